//! Housekeeping: what can no longer matter is deleted, and nothing that still matters is.

use pairgate::maintenance::sweep;

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(sweep_forgets_expired_state_and_keeps_live_state);

async fn sweep_forgets_expired_state_and_keeps_live_state(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let paired = app.device("SN-2001").await;
    let tokens = app.pair(&paired, tenant).await;
    let waiting = app.device("SN-2002").await;
    let pending = app.start_pairing(&waiting).await;
    let now_ms = || app.now() * 1000;

    // Right away nothing live goes: the pending flow still polls, the refresh token still works.
    sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    let res = app
        .poll(&waiting, pending["device_code"].as_str().unwrap())
        .await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "authorization_pending"
    );

    // Two hours on, the jti values and rate windows of those requests are gone.
    app.advance(2 * 3600 + 1);
    let report = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert!(report.replay_and_rate_rows >= 4, "{report:?}");
    assert_eq!(
        report.flows, 0,
        "expired flows are kept for the pairing history"
    );

    // A month on, the flows go too; the refresh token (30-day idle lifetime) expired with them.
    app.advance(31 * 24 * 3600);
    let report = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert_eq!(report.flows, 2, "{report:?}");
    assert_eq!(report.tokens, 1, "{report:?}");
    assert!(tokens["refresh_token"].is_string());
    // Sweeping again finds nothing more.
    let again = sweep(&app.ctx.store, &app.ctx.oauth, 1_800_000, now_ms())
        .await
        .unwrap();
    assert_eq!(again, pairgate::maintenance::SweepReport::default());
}
