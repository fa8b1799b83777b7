//! What pairgate does while PostgreSQL is unreachable: readiness and database-backed requests
//! answer 503 with Retry-After, and everything recovers without a restart once it is back.

use std::time::Duration;

use crate::support::{TestApp, postgres};

#[actix_web::test]
async fn postgres_outage_turns_readyz_503_and_recovers() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::builder(backend)
        .via_proxy()
        .config("[database]\nacquire_timeout_ms = 500\n[server]\nretry_after_secs = 7")
        .start()
        .await;
    let device = app.device("SN-OUTAGE").await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    app.proxy.as_ref().unwrap().cut();
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "unavailable"})
    );
    // The process itself is fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
    // Requests that need the database say so, and when to come back.
    let res = app.device_authorization(&device).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "temporarily_unavailable"})
    );

    app.proxy.as_ref().unwrap().restore();
    let mut status = 0;
    for _ in 0..40 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        status, 200,
        "readyz did not recover after the database came back"
    );
}
