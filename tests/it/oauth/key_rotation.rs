//! Key rotation reaches every instance before the new key signs: each instance reads the ring
//! again when a token names a kid it does not hold (at most once a second), and on PostgreSQL
//! hears of a rotation at once (`LISTEN`/`NOTIFY`). Start-up refuses a `publish_before_use_secs`
//! shorter than `ring_reload_secs` (`binary.rs`, `config.rs`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pairgate::app::AppContext;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::{Backend, TestApp, postgres};
use crate::telemetry;

backend_tests!(a_token_signed_by_a_key_rotated_in_elsewhere_is_accepted_at_once);

/// Another instance on the app's database (its own store, key ring and writer), configured
/// alike, as a second server behind the same load balancer; it shares the app's clock.
async fn second_instance(app: &TestApp) -> AppContext {
    AppContext::start((*app.ctx.settings).clone(), app.clock.clone())
        .await
        .unwrap()
}

fn part(token: &str, n: usize) -> Value {
    let text = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(n).unwrap())
        .unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// `token`'s claims, signed again by `ctx`'s newest active key.
fn signed_by(ctx: &AppContext, token: &str, now_ms: i64) -> String {
    ctx.oauth
        .keys()
        .sign("at+jwt", &part(token, 1), now_ms)
        .unwrap()
}

fn kid_of(token: &str) -> String {
    part(token, 0)["kid"].as_str().unwrap().to_owned()
}

async fn a_token_signed_by_a_key_rotated_in_elsewhere_is_accepted_at_once(backend: Backend) {
    // No notifications: this instance hears of nothing, and its periodic reload is a minute off.
    let app = TestApp::builder(backend)
        .config("[keys]\nlisten_for_rotations = false")
        .start()
        .await;
    let paired = telemetry::paired(&app, "SN-ROTATE").await;
    let other = second_instance(&app).await;
    let alg = app.ctx.settings.keys.signing_alg;

    // A second on (keys activating in the same millisecond would tie), the other instance
    // rotates in a key that signs at once, and signs a token with it.
    app.advance(1);
    let now_ms = app.now() * 1000;
    let kid = other.oauth.keys().rotate(alg, now_ms, 0).await.unwrap();
    assert!(
        app.ctx
            .oauth
            .keys()
            .verification_key(&kid, now_ms)
            .is_none()
    );
    let token = signed_by(&other, &paired.access_token, now_ms);
    assert_eq!(kid_of(&token), kid);
    // This instance reads its ring again for the unknown kid, and accepts the token.
    let body = telemetry::readings(&app, "first", 2);
    let res = telemetry::upload_with(&app, &paired.device, &token, &body, json!({})).await;
    assert_eq!(telemetry::accepted(res).await, (2, 0));
    let introspected = app
        .ctx
        .oauth
        .active_access_token(&token)
        .await
        .unwrap()
        .expect("active");
    assert_eq!(introspected.device.as_deref(), Some("SN-ROTATE"));

    // Half a second later another key: within a second of the last such reload, an unknown
    // kid is just unknown (made-up kids cannot make every request read the database)...
    app.advance_ms(500);
    let now_ms = pairgate::clock::Clock::now(&*app.clock).timestamp_millis();
    let second = other.oauth.keys().rotate(alg, now_ms, 0).await.unwrap();
    let token = signed_by(&other, &paired.access_token, now_ms);
    assert_eq!(kid_of(&token), second);
    let body = telemetry::readings(&app, "second", 2);
    let res = telemetry::upload_with(&app, &paired.device, &token, &body, json!({})).await;
    let (status, _, refusal) = telemetry::refusal(res).await;
    assert_eq!(status, 401);
    assert_eq!(
        refusal["error_description"],
        "the access token's signing key is not published"
    );
    // ...and after it, the ring is read again.
    app.advance_ms(600);
    let body = telemetry::readings(&app, "third", 2);
    let res = telemetry::upload_with(&app, &paired.device, &token, &body, json!({})).await;
    assert_eq!(telemetry::accepted(res).await, (2, 0));
}

/// Two instances on one PostgreSQL database: when one rotates, the other's ring holds the new
/// key at once (it is notified), before any token names it, and accepts the first token the
/// new key signs.
#[actix_web::test]
async fn postgres_instances_hear_of_a_rotation_at_once() {
    let Some(backend) = postgres() else {
        return;
    };
    let app = TestApp::start(backend).await;
    let paired = telemetry::paired(&app, "SN-NOTIFY").await;
    let other = second_instance(&app).await;

    app.advance(1);
    let now_ms = app.now() * 1000;
    let kid = app
        .ctx
        .oauth
        .keys()
        .rotate(app.ctx.settings.keys.signing_alg, now_ms, 0)
        .await
        .unwrap();
    // The periodic reload is a minute away; the notification arrives within a poll (100 ms).
    let mut published = false;
    for _ in 0..50 {
        published = other.oauth.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str());
        if published {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "the other instance did not hear of the rotation");

    let token = signed_by(&app.ctx, &paired.access_token, now_ms);
    assert_eq!(kid_of(&token), kid);
    assert!(
        other
            .oauth
            .active_access_token(&token)
            .await
            .unwrap()
            .is_some()
    );
}
