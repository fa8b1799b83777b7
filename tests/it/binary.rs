//! The `pairgate` binary as an operator meets it: configuration errors that name the key, database
//! errors with their real cause, and a clean exit on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::clean_command;
use crate::support::postgres;

/// `pairgate`, with only the environment the test sets.
fn pairgate() -> Command {
    clean_command(env!("CARGO_BIN_EXE_pairgate"))
}

fn run_failing(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_settings_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_DATABASE__POOL_SIZE", "0")
            .arg("migrate"),
    );
    assert!(err.contains("database.pool_size"), "{err}");

    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_SERVER__NO_SUCH_KEY", "1")
            .arg("migrate"),
    );
    assert!(err.contains("no_such_key"), "{err}");

    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_BIND", "not-an-address")
            .arg("migrate"),
    );
    assert!(err.contains("server.bind"), "{err}");

    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_DATABASE_URL", "mysql://root:hunter2@db/x")
            .arg("migrate"),
    );
    assert!(err.contains("database.url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // A key that would sign before every instance has read the ring again.
    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_KEYS__PUBLISH_BEFORE_USE_SECS", "30")
            .arg("migrate"),
    );
    assert!(err.contains("keys.publish_before_use_secs"), "{err}");
    assert!(err.contains("keys.ring_reload_secs (60 s)"), "{err}");

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .arg("--config")
            .arg(&file),
    );
    assert!(err.contains("log.format"), "{err}");

    let err = run_failing(
        pairgate()
            .arg("--config")
            .arg(dir.path().join("missing.toml")),
    );
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn migrate_creates_the_default_sqlite_file_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = pairgate()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/pairgate.db").is_file());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("applied"), "{stdout}");
    // Running it again is a no-op.
    let out = pairgate()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("up to date")
    );
}

#[test]
fn unreachable_postgres_is_reported_with_its_cause() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = run_failing(
        pairgate()
            .env(
                "PAIRGATE_DATABASE_URL",
                "postgres://pairgate:s3cret@127.0.0.1:1/pairgate",
            )
            .arg("migrate"),
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
}

#[test]
fn wrong_postgres_password_is_reported_with_its_cause() {
    let Some(crate::support::Backend::Postgres(admin)) = postgres() else {
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_password(Some("definitely-wrong")).unwrap();
    let err = run_failing(
        pairgate()
            .env("PAIRGATE_DATABASE_URL", url.as_str())
            .arg("migrate"),
    );
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("definitely-wrong"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pairgate` serving in `dir` (its default SQLite file under `data/`) on a free port, once it
/// answers `/healthz`.
fn serve_in(dir: &std::path::Path) -> std::process::Child {
    serve_with(dir, &[]).0
}

/// [`serve_in`] with more environment; also returns its base URL (the public URL).
fn serve_with(dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let port = free_port();
    let child = pairgate()
        .current_dir(dir)
        .env("PAIRGATE_BIND", format!("127.0.0.1:{port}"))
        .env("PAIRGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("PAIRGATE_SERVER__SHUTDOWN_TIMEOUT_SECS", "5")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut up = false;
    for _ in 0..100 {
        if let Ok(res) = reqwest::blocking_get(&url) {
            up = res == 200;
            if up {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "server did not come up");
    (child, format!("http://127.0.0.1:{port}"))
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let child = serve_in(dir.path());
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("pairgate stopped"), "{stderr}");
    assert!(dir.path().join("data/pairgate.db").is_file());
}

/// On SQLite one server decides which jti values are new (it keeps them in memory), so a second
/// server on the same file must not start; once the first has stopped, one may.
#[test]
fn a_second_server_on_the_same_sqlite_file_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve_in(dir.path());
    let err = run_failing(
        pairgate()
            .current_dir(dir.path())
            .env("PAIRGATE_BIND", format!("127.0.0.1:{}", free_port())),
    );
    assert!(
        err.contains("another pairgate server uses this SQLite database"),
        "{err}"
    );
    sigterm(&first);
    assert!(first.wait_with_output().unwrap().status.success());
    let again = serve_in(dir.path());
    sigterm(&again);
    assert!(again.wait_with_output().unwrap().status.success());
}

/// The lock is the database file's, whatever path names it: a symbolic link, a path with `..`
/// and a relative path all reach the first server's lock, and a second hard link (a second
/// name SQLite would keep a second WAL for) is refused outright.
#[test]
fn no_second_server_on_one_sqlite_file_by_another_path() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve_in(dir.path());
    let db = dir.path().join("data/pairgate.db");
    std::os::unix::fs::symlink(&db, dir.path().join("link.db")).unwrap();
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let dotted = dir.path().join("other/../data/pairgate.db");
    for url in [
        format!("sqlite://{}", dir.path().join("link.db").display()),
        format!("sqlite://{}", dotted.display()),
        "sqlite://data/./pairgate.db".to_owned(),
    ] {
        let err = fails_to_start(
            pairgate()
                .current_dir(dir.path())
                .env("PAIRGATE_DATABASE_URL", &url)
                .env("PAIRGATE_BIND", format!("127.0.0.1:{}", free_port())),
        );
        assert!(
            err.contains("another pairgate server uses this SQLite database"),
            "{url}: {err}"
        );
    }
    sigterm(&first);
    assert!(first.wait_with_output().unwrap().status.success());

    std::fs::hard_link(&db, dir.path().join("twin.db")).unwrap();
    for url in [
        "sqlite://data/pairgate.db".to_owned(),
        format!("sqlite://{}", dir.path().join("twin.db").display()),
    ] {
        let err = fails_to_start(
            pairgate()
                .current_dir(dir.path())
                .env("PAIRGATE_DATABASE_URL", &url)
                .env("PAIRGATE_BIND", format!("127.0.0.1:{}", free_port())),
        );
        assert!(err.contains("has 2 hard links"), "{url}: {err}");
    }
}

/// Runs `cmd`, which must exit with a failure within 30 s; returns its standard error. A
/// process still running then (a server that started) is killed and the test fails.
fn fails_to_start(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(!out.status.success(), "expected failure");
            return String::from_utf8(out.stderr).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    panic!(
        "a second server started: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server started on a SQLite file it cannot write (immutable: `chattr +i` binds root too)
/// starts, says it is not ready, answers 503 with `Retry-After` where it needs to write, and
/// recovers by itself once the file is writable: its writer opens a new connection after a
/// read-only refusal, since a connection opened on a read-only file stays read-only.
#[actix_web::test]
async fn a_server_on_a_read_only_sqlite_file_is_unavailable_until_it_can_write() {
    use crate::outage::{Tmpfs, chattr};
    use crate::support::device::{Signer, TestDevice};

    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let dir = tmpfs.path();
    let key = Signer::es256();
    std::fs::write(dir.join("device.jwk"), key.jwk().to_string()).unwrap();
    let out = pairgate()
        .current_dir(dir)
        .args([
            "device", "register", "--serial", "SN-RO", "--model", "TX-9000",
        ])
        .args(["--jwk-file", "device.jwk"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = dir.join("data/pairgate.db");
    assert!(chattr("+i", &db));

    let (server, base) = serve_with(dir, &[("PAIRGATE_SERVER__RETRY_AFTER_SECS", "7")]);
    let client = ::reqwest::Client::new();
    let device = TestDevice {
        serial: "SN-RO".into(),
        key,
        issuer: base.clone(),
    };
    let now = crate::support::test_epoch().timestamp();
    let (assertion, proof) = (
        device.assertion(now),
        device.dpop("POST", "/oauth/device_authorization", now),
    );
    let authorize = || {
        client
            .post(format!("{base}/oauth/device_authorization"))
            .header("DPoP", &proof)
            .form(&[
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ])
            .send()
    };
    let readyz = || client.get(format!("{base}/readyz")).send();

    let res = readyz().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    let res = authorize().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "temporarily_unavailable"})
    );

    assert!(chattr("-i", &db));
    let mut status = 0;
    for _ in 0..40 {
        status = readyz().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "readyz did not recover");
    // The request refused while read-only was never recorded: it is new now.
    assert_eq!(authorize().await.unwrap().status(), 200);

    sigterm(&server);
    let out = server.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// reqwest's blocking client needs a feature we do not build; a raw HTTP/1.0 GET is enough here.
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = TcpStream::connect(host)?;
        write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }
}

#[test]
fn operators_create_and_disable_users_from_the_cli() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = pairgate()
            .current_dir(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, out, err) = run(&["tenant", "create", "--name", "Acme Water"], "");
    assert!(ok, "{err}");
    assert!(out.contains("tenant 1 created"), "{out}");
    // The password comes on standard input, never in the arguments.
    let (ok, out, err) = run(
        &[
            "user",
            "create",
            "--email",
            "Ann@Example.com",
            "--name",
            "Ann",
            "--tenant",
            "1",
            "--role",
            "owner",
            "--totp",
        ],
        "correct horse battery staple\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("user 1 created"), "{out}");
    assert!(
        out.contains("otpauth://totp/pairgate:ann%40example.com?"),
        "{out}"
    );
    assert!(
        !out.contains("correct horse"),
        "the password is never echoed"
    );
    // Weak passwords and staff with a tenant are refused with a reason.
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--email",
            "b@example.com",
            "--name",
            "B",
            "--tenant",
            "1",
        ],
        "short\n",
    );
    assert!(!ok && err.contains("at least 8 characters"), "{err}");
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--email",
            "s@example.com",
            "--name",
            "S",
            "--tenant",
            "1",
            "--role",
            "staff",
        ],
        "correct horse battery staple\n",
    );
    assert!(!ok && err.contains("staff have no tenant"), "{err}");
    let (ok, out, err) = run(&["user", "disable", "--email", "ann@example.com"], "");
    assert!(ok && out.contains("disabled"), "{out}{err}");
    let (ok, _, err) = run(&["user", "disable", "--email", "nobody@example.com"], "");
    let named = err.contains("no user with email nobody@example.com");
    assert!(!ok && named, "{err}");
}
