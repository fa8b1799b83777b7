//! The operator's read commands and their refusals, run as the binary against a test app's
//! database (SQLite, and PostgreSQL when configured): tables with RFC 3339 times and counts in
//! words that agree, errors that name what was not found, non-zero exit codes.

use std::io::Write;
use std::process::Stdio;

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
    let mut child = app
        .cli(dir.path())
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
