//! The operator's read commands and their refusals, run as the binary against a test app's
//! database (SQLite, and PostgreSQL when configured): tables with RFC 3339 times and counts in
//! words that agree, errors that name what was not found, non-zero exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

use pairgate::config::DatabaseUrl;

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    tenant_and_user_lists,
    device_list_and_show,
    client_list_and_disable,
    unknown_ids_are_named,
);

/// What a run of the binary gave: (succeeded, stdout, stderr).
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn pairgate(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let url = match &app.ctx.settings.database.url {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairgate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PAIRGATE_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .current_dir(dir.path())
        .env("PAIRGATE_DATABASE_URL", url)
        .env(
            "PAIRGATE_KEYS__MASTER_KEY",
            app.ctx.settings.keys.master_key.expose(),
        )
        .env("PAIRGATE_LOG__LEVEL", "warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(app: &TestApp, args: &[&str]) -> String {
    let run = pairgate(app, args, None);
    assert!(run.ok, "{args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// The command fails with exactly this one line on stderr, and prints nothing.
fn refused(app: &TestApp, args: &[&str], stdin: Option<&str>, message: &str) {
    let run = pairgate(app, args, stdin);
    assert!(!run.ok, "{args:?} should fail: {}", run.stdout);
    assert_eq!(run.stderr, format!("pairgate: {message}\n"), "{args:?}");
    assert!(!run.stdout.contains("created"), "{}", run.stdout);
}

/// The table row whose first cell is `first`, split into its cells.
fn row(table: &str, first: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.split("  ").next() == Some(first) || l.starts_with(&format!("{first} ")))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn rfc3339_of(app: &TestApp, ms: i64) -> String {
    let _ = app;
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const PASSWORD: &str = "correct horse battery staple 42\n";

async fn tenant_and_user_lists(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let beta = app.tenant("Beta Labs").await;
    app.raw_sql(&format!(
        "UPDATE tenants SET erp_customer_number = 'C-100' WHERE id = {acme}"
    ))
    .await;
    for (email, tenant) in [("ann@acme.test", acme), ("bob@acme.test", acme)] {
        let tenant = tenant.to_string();
        let args = [
            "user", "create", "--email", email, "--name", "Someone", "--tenant",
        ];
        let run = pairgate(
            &app,
            &[&args[..], &[&tenant, "--role", "admin"]].concat(),
            Some(PASSWORD),
        );
        assert!(run.ok, "{}", run.stderr);
    }
    let args = [
        "user",
        "create",
        "--email",
        "cy@beta.test",
        "--name",
        "Cy Beta",
        "--tenant",
    ];
    let run = pairgate(
        &app,
        &[&args[..], &[&beta.to_string()]].concat(),
        Some(PASSWORD),
    );
    assert!(run.ok, "{}", run.stderr);

    let tenants = ok(&app, &["tenant", "list"]);
    assert!(tenants.starts_with("ID"), "{tenants}");
    let created = rfc3339_of(&app, app.now() * 1000);
    assert_eq!(
        row(&tenants, &acme.to_string()),
        [
            &acme.to_string(),
            "Acme Water",
            "C-100",
            &created,
            "2 users"
        ]
    );
    assert_eq!(
        row(&tenants, &beta.to_string()),
        [&beta.to_string(), "Beta Labs", "-", &created, "1 user"]
    );

    let users = ok(&app, &["user", "list"]);
    assert!(
        users.contains("ann@acme.test") && users.contains("cy@beta.test"),
        "{users}"
    );
    let only_beta = ok(&app, &["user", "list", "--tenant", &beta.to_string()]);
    assert!(!only_beta.contains("ann@acme.test"), "{only_beta}");
    let cy = only_beta.lines().nth(1).unwrap();
    let cells: Vec<&str> = cy
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells[1..],
        [
            "cy@beta.test",
            "Cy Beta",
            "viewer",
            "active",
            "no",
            &beta.to_string()
        ]
    );
}

async fn device_list_and_show(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let paired = app.device("SN-CLI-1").await;
    app.device("SN-CLI-2").await;
    app.pair(&paired, acme).await;
    let at = app.now() * 1000 - 60_000;
    for (i, ts) in [(1, at - 1000), (2, at)] {
        app.raw_sql(&format!(
            "INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, \
             metrics) VALUES ('SN-CLI-1', 'r{i}', {acme}, {ts}, {ts}, '{{}}')"
        ))
        .await;
    }

    let all = ok(&app, &["device", "list"]);
    assert!(all.starts_with("SERIAL"), "{all}");
    let last = rfc3339_of(&app, at);
    assert_eq!(
        row(&all, "SN-CLI-1")[2..],
        [&acme.to_string(), "active", &last, "2 readings"]
    );
    assert_eq!(
        row(&all, "SN-CLI-2")[2..],
        ["-", "unpaired", "never", "0 readings"]
    );
    let of_acme = ok(&app, &["device", "list", "--tenant", &acme.to_string()]);
    assert!(
        of_acme.contains("SN-CLI-1") && !of_acme.contains("SN-CLI-2"),
        "{of_acme}"
    );

    app.raw_sql("DELETE FROM telemetry_readings WHERE reading_id = 'r1'")
        .await;
    let shown = ok(&app, &["device", "show", "SN-CLI-1"]);
    assert!(
        shown.contains(&format!("tenant:       {acme}\n")),
        "{shown}"
    );
    assert!(shown.contains("pairing:      active\n"), "{shown}");
    assert!(
        shown.contains(&format!("last reading: {last}\n")),
        "{shown}"
    );
    assert!(shown.contains("readings:     1 reading\n"), "{shown}");
}

async fn client_list_and_disable(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (client_id, _secret) = app.service_client_with_secret("erp").await;
    app.device("SN-CLI-3").await;
    let listed = ok(&app, &["client", "list"]);
    assert_eq!(
        row(&listed, &client_id)[1..5],
        ["Test ERP", "erp", "client_secret", "active"]
    );
    assert!(
        !listed.contains("SN-CLI-3"),
        "devices are not service clients\n{listed}"
    );

    let said = ok(&app, &["client", "disable", &client_id]);
    assert!(
        said.contains(&format!("client {client_id} disabled")),
        "{said}"
    );
    assert_eq!(
        row(&ok(&app, &["client", "list"]), &client_id)[4],
        "disabled"
    );
    let audited = app
        .query_i64(&format!(
            "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'client.disabled' \
             AND actor = 'cli' AND subject = 'client:{client_id}'"
        ))
        .await;
    assert_eq!(audited, 1);
    // Disabled: its secret no longer gets a token.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "erp")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Again: nothing more is recorded.
    let said = ok(&app, &["client", "disable", &client_id]);
    assert!(said.contains("already disabled"), "{said}");
}

async fn unknown_ids_are_named(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await.to_string();
    let create = [
        "user",
        "create",
        "--email",
        "x@acme.test",
        "--name",
        "X",
        "--tenant",
        "42",
    ];
    refused(&app, &create, Some(PASSWORD), "no tenant with id 42");
    refused(
        &app,
        &["user", "list", "--tenant", "42"],
        None,
        "no tenant with id 42",
    );
    refused(
        &app,
        &["device", "list", "--tenant", "42"],
        None,
        "no tenant with id 42",
    );
    refused(
        &app,
        &["device", "show", "SN-1"],
        None,
        "no device with serial SN-1",
    );
    refused(
        &app,
        &["client", "disable", "erp-1"],
        None,
        "no client with id erp-1",
    );
    // A device is a client too, but not a service client to disable.
    app.device("SN-CLI-4").await;
    refused(
        &app,
        &["client", "disable", "SN-CLI-4"],
        None,
        "no client with id SN-CLI-4",
    );
    let disable = ["user", "disable", "--email", "nobody@acme.test"];
    refused(&app, &disable, None, "no user with email nobody@acme.test");
    let approve = ["device", "approve", "--user-code", "BCDF-GHJK", "--tenant"];
    refused(
        &app,
        &[&approve[..], &["42"]].concat(),
        None,
        "no tenant with id 42",
    );
    refused(
        &app,
        &[&approve[..], &[tenant.as_str()]].concat(),
        None,
        "no pending pairing request with code BCDF-GHJK",
    );
    let deny = ["device", "deny", "--user-code", "BCDF-GHJK"];
    refused(
        &app,
        &deny,
        None,
        "no pending pairing request with code BCDF-GHJK",
    );
}

fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairgate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PAIRGATE_") {
            cmd.env_remove(key);
        }
    }
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
    use std::io::Read;
    let bin = env!("CARGO_BIN_EXE_pairgate");
    let line = format!("{bin} user create --email {email} --name T --tenant 1");
    let mut script = Command::new("script");
    for (key, _) in std::env::vars() {
        if key.starts_with("PAIRGATE_") {
            script.env_remove(key);
        }
    }
    let mut child = script
        .env("PAIRGATE_LOG__LEVEL", "warn")
        .current_dir(dir)
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut input, mut output) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut shown = Vec::new();
    for (prompt, answer) in ["(not shown): ", "again: "].iter().zip(answers) {
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let mut buf = [0; 256];
            let n = output.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&shown));
            shown.extend_from_slice(&buf[..n]);
        }
        input.write_all(format!("{answer}\r").as_bytes()).unwrap();
        input.flush().unwrap();
    }
    output.read_to_end(&mut shown).unwrap();
    let ok = child.wait().unwrap().success();
    (String::from_utf8_lossy(&shown).into_owned(), ok)
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
