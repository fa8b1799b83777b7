//! Refused OAuth requests: a client that authenticated and was then refused is audited; requests
//! whose client never authenticated only bump a counter per address, claimed client and hour, so
//! nobody can grow the hash-chained audit log by sending garbage.

use futures_util::future::join_all;
use pairgate::maintenance::sweep;
use pairgate::store::refusals::{self, RefusalCount};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    unauthenticated_refusals_are_counted_not_audited,
    claims_per_address_are_bounded,
    an_authenticated_refusal_is_still_audited,
    an_oversized_client_id_is_stored_truncated,
    housekeeping_forgets_old_windows,
);

async fn audited_refusals(app: &TestApp) -> i64 {
    app.query_i64("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'oauth.refused'")
        .await
}

async fn counters(app: &TestApp) -> Vec<RefusalCount> {
    app.ctx
        .store
        .read(|tx| refusals::recent(tx, 1000))
        .await
        .unwrap()
}

/// A request with a client id and a wrong secret, to `path`.
async fn wrong_secret(app: &TestApp, path: &str, client_id: &str) -> reqwest::Response {
    app.post_form(
        path,
        &[
            ("grant_type", "client_credentials"),
            ("token", "whatever"),
            ("client_id", client_id),
            ("client_secret", "not the secret"),
        ],
        &[],
    )
    .await
}

/// Sixty refusals at once, at all four endpoints, for one claimed client from one address: one
/// counter row saying sixty, and not a single audit row.
async fn unauthenticated_refusals_are_counted_not_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = audited_refusals(&app).await;
    let paths = [
        "/oauth/token",
        "/oauth/device_authorization",
        "/oauth/introspect",
        "/oauth/revoke",
    ];
    let statuses =
        join_all((0..60).map(|n| wrong_secret(&app, paths[n % paths.len()], "SN-GHOST")))
            .await
            .into_iter()
            .map(|res| res.status().as_u16())
            .collect::<Vec<_>>();
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");

    assert_eq!(audited_refusals(&app).await, before);
    let rows = counters(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.refusals, 60);
    assert_eq!(row.actor, "client:SN-GHOST");
    assert_eq!(row.ip, "127.0.0.1");
    assert!(row.first_reason.contains("invalid_client"), "{row:?}");
    assert!(row.last_reason.contains("invalid_client"), "{row:?}");
    let now_ms = app.now() * 1000;
    assert_eq!(row.window_start, now_ms - now_ms.rem_euclid(3_600_000));

    // The next hour counts in a row of its own.
    app.advance(3600);
    wrong_secret(&app, "/oauth/token", "SN-GHOST").await;
    let rows = counters(&app).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].refusals, 1, "newest first");
}

/// An address naming a new client id with every request still adds a bounded number of rows:
/// sixteen claims counted apart, the rest together under `others`. Nothing is lost.
async fn claims_per_address_are_bounded(backend: Backend) {
    let app = TestApp::start(backend).await;
    for n in 0..40 {
        wrong_secret(&app, "/oauth/token", &format!("random-{n}")).await;
    }
    // No client named at all.
    app.post_form("/oauth/token", &[("grant_type", "client_credentials")], &[])
        .await;
    let rows = counters(&app).await;
    assert_eq!(rows.len(), 17, "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.refusals).sum::<i64>(), 41);
    let others = rows.iter().find(|r| r.actor == "others").unwrap();
    assert_eq!(others.refusals, 41 - 16);
    assert!(rows.iter().any(|r| r.actor == "client:random-0"));
    assert!(!rows.iter().any(|r| r.actor == "client:random-39"));
}

/// A registered device that authenticates and then presents a stolen device code is an
/// authenticated actor: its refusal is audited, with its id, and not counted.
async fn an_authenticated_refusal_is_still_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let thief = app.device("SN-THIEF").await;
    let before = audited_refusals(&app).await;
    let res = app.poll(&thief, "stolen").await;
    assert_eq!(res.status(), 400);
    assert_eq!(audited_refusals(&app).await, before + 1);
    let events = app.ctx.store.audit_page(None, None, 10).await.unwrap();
    let refused = events.iter().find(|e| e.action == "oauth.refused").unwrap();
    assert_eq!(refused.actor, "client:SN-THIEF");
    assert!(
        refused.detail.contains("invalid_grant"),
        "{}",
        refused.detail
    );
    assert!(refused.detail.contains("127.0.0.1"), "{}", refused.detail);
    assert!(counters(&app).await.is_empty());

    // The same device with an assertion signed by another key did not authenticate.
    let impostor = crate::support::device::TestDevice {
        serial: "SN-THIEF".into(),
        key: crate::support::device::Signer::es256(),
        issuer: app.base.clone(),
    };
    let res = app.poll(&impostor, "stolen").await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );
    assert_eq!(audited_refusals(&app).await, before + 1);
    let rows = counters(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "client:SN-THIEF");
}

/// A 10 KB client id is kept as its first 128 bytes, in the counters and in what reaches the
/// client cache; it never reaches the audit log.
async fn an_oversized_client_id_is_stored_truncated(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = audited_refusals(&app).await;
    let huge = "A".repeat(10 * 1024);
    let res = wrong_secret(&app, "/oauth/token", &huge).await;
    assert_eq!(res.status(), 400);
    // Multi-byte characters are cut at a character boundary, control characters dropped.
    let mixed = format!("\u{7}{}", "é".repeat(100));
    wrong_secret(&app, "/oauth/token", &mixed).await;
    let rows = counters(&app).await;
    let long = rows.iter().find(|r| r.actor.contains('A')).unwrap();
    assert_eq!(long.actor, format!("client:{}", "A".repeat(128)));
    let accented = rows.iter().find(|r| r.actor.contains('é')).unwrap();
    assert_eq!(accented.actor, format!("client:{}", "é".repeat(64)));
    let longest = app
        .query_i64("SELECT CAST(MAX(LENGTH(actor)) AS BIGINT) AS n FROM oauth_refusals")
        .await;
    assert!(longest <= 135, "{longest}");
    assert_eq!(audited_refusals(&app).await, before);
}

/// Housekeeping keeps a month of counters and deletes older windows.
async fn housekeeping_forgets_old_windows(backend: Backend) {
    let app = TestApp::start(backend).await;
    wrong_secret(&app, "/oauth/token", "SN-GHOST").await;
    let now_ms = || app.now() * 1000;
    let report = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert_eq!(report.refusal_counters, 0);
    app.advance(29 * 24 * 3600);
    wrong_secret(&app, "/oauth/token", "SN-GHOST").await;
    let report = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert_eq!(report.refusal_counters, 0, "a month is kept");
    assert_eq!(counters(&app).await.len(), 2);
    app.advance(2 * 24 * 3600);
    let report = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert_eq!(report.refusal_counters, 1, "{report:?}");
    let rows = counters(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].refusals, 1);
}
