//! The binary's start: serve's flags and help, the hidden password prompt, the files a first run
//! creates (named by absolute path) and that git ignores.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::clean_command;

fn bare() -> Command {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_pairgate"));
    cmd.env("PAIRGATE_LOG__LEVEL", "warn");
    cmd
}

#[test]
fn serve_help_names_the_environment_variables() {
    let out = bare().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind <ADDR>",
        "PAIRGATE_BIND",
        "--public-url <URL>",
        "PAIRGATE_PUBLIC_URL",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[actix_web::test]
async fn serve_flags_override_the_environment_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = bare()
        .current_dir(dir.path())
        .args(["serve", "--bind", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("server.bind") && err.contains("the command line"),
        "{err}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bare()
        .current_dir(dir.path())
        .env("PAIRGATE_BIND", "127.0.0.1:1")
        .env("PAIRGATE_PUBLIC_URL", "http://env.invalid")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--public-url", "https://id.example.test"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server");
    let mut issuer = None;
    for _ in 0..100 {
        if let Ok(res) = reqwest::get(&url).await {
            issuer = res
                .json::<serde_json::Value>()
                .await
                .ok()
                .map(|m| m["issuer"].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(issuer, Some(serde_json::json!("https://id.example.test")));
}

/// `pairgate user create` on a terminal (a pty that `script` opens), typing each answer once its
/// prompt shows: (what the terminal showed, whether it succeeded).
fn on_a_terminal(dir: &std::path::Path, email: &str, answers: [&str; 2]) -> (String, bool) {
    // A terminal may discard what was typed while the prompt switches echo off (TCSAFLUSH), so
    // an attempt that stalls is stopped after a while and made again.
    for _ in 0..3 {
        if let Some(result) = attempt_on_a_terminal(dir, email, answers) {
            return result;
        }
    }
    panic!("the prompt never finished on a terminal");
}

/// One run of `user create` on a terminal `script` opens; `None` if it stalled.
fn attempt_on_a_terminal(
    dir: &std::path::Path,
    email: &str,
    answers: [&str; 2],
) -> Option<(String, bool)> {
    use std::io::Read;
    let bin = env!("CARGO_BIN_EXE_pairgate");
    let line = format!("{bin} user create --email {email} --name T --tenant 1");
    let mut script = clean_command("script");
    let mut child = script
        .env("PAIRGATE_LOG__LEVEL", "warn")
        .current_dir(dir)
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut input, mut output) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    // The watchdog: a stalled attempt is killed (its terminal closes, so reads end).
    let (done, stalled) = (
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let (pid, watch_done, watch_stalled) = (child.id(), done.clone(), stalled.clone());
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(20));
        if !watch_done.load(std::sync::atomic::Ordering::SeqCst) {
            watch_stalled.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &pid.to_string()])
                .status();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut shown = Vec::new();
    for (prompt, answer) in ["(not shown): ", "again: "].iter().zip(answers) {
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let mut buf = [0; 256];
            let n = output.read(&mut buf).unwrap_or(0);
            if n == 0 {
                let _ = child.wait();
                return None;
            }
            shown.extend_from_slice(&buf[..n]);
        }
        // Let the prompt switch echo off before typing.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = input.write_all(format!("{answer}\r").as_bytes());
        let _ = input.flush();
    }
    let _ = output.read_to_end(&mut shown);
    let ok = child.wait().unwrap().success();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    if stalled.load(std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    Some((String::from_utf8_lossy(&shown).into_owned(), ok))
}

#[test]
fn the_password_prompt_is_hidden_and_asks_twice() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script` to open a terminal with: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = bare()
        .current_dir(dir.path())
        .args(["tenant", "create", "--name", "Acme"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let secret = "correct horse battery staple 7";
    let (shown, ok) = on_a_terminal(dir.path(), "t1@acme.test", [secret, secret]);
    assert!(ok && shown.contains("user 1 created"), "{shown}");
    assert!(!shown.contains("horse"), "the password was shown: {shown}");
    let (shown, ok) = on_a_terminal(dir.path(), "t2@acme.test", [secret, "something else 123"]);
    assert!(!ok, "{shown}");
    assert!(shown.contains("the two passwords differ"), "{shown}");
    assert!(!shown.contains("horse"), "the password was shown: {shown}");
}

#[test]
fn a_new_database_and_master_key_are_named_once_by_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let out = bare()
        .current_dir(dir.path())
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let db = root.join("data/pairgate.db");
    let key = root.join("data/master.key");
    assert!(
        err.contains(&format!("created the SQLite database: {}\n", db.display())),
        "{err}"
    );
    assert!(err.contains(&format!(": {}\n", key.display())), "{err}");
    assert!(err.contains("created the master key file"), "{err}");
    let again = bare()
        .current_dir(dir.path())
        .args(["tenant", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(
        !err.contains("created"),
        "only the first run names them: {err}"
    );
}

#[test]
fn git_ignores_what_the_documented_commands_create() {
    let repo = env!("CARGO_MANIFEST_DIR");
    if !std::path::Path::new(repo).join(".git").exists() {
        return;
    }
    let created = [
        "data/pairgate.db",
        "data/master.key",
        "pairgate.db",
        "pairgate.db-wal",
        "pairgate.db-shm",
        "dev.jwk",
        "dev.pem",
    ];
    for file in created {
        let status = Command::new("git")
            .current_dir(repo)
            .args(["check-ignore", "-q", "--no-index", file])
            .status()
            .unwrap();
        assert!(status.success(), "{file} is not ignored");
    }
}
