//! The refresh_token grant (RFC 6749 §6): rotation on every use, reuse detection that revokes the
//! whole family (RFC 9700 §4.14.2), binding to the client and to the DPoP key (RFC 9449 §5), idle
//! and absolute expiry, and the access tokens that come out.

use serde_json::Value;

use pairgate::store::registry::ActiveStatus;

use super::client_auth::set_status;
use super::error_of;
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, JWT_BEARER, TestApp};

backend_tests!(
    each_use_rotates_the_refresh_token,
    reuse_of_a_consumed_token_revokes_the_family,
    the_refresh_token_is_bound_to_its_client,
    the_refresh_token_is_bound_to_the_dpop_key,
    an_idle_refresh_token_expires,
    a_token_family_ends_at_its_absolute_lifetime,
    the_new_access_token_keeps_tenant_and_key_binding,
    a_device_disabled_after_it_authenticated_is_refused_at_once,
    a_family_is_one_row_however_often_it_rotates,
    a_token_the_mac_does_not_vouch_for_is_unknown_and_revokes_nothing,
    after_a_restore_the_newest_token_still_works_and_older_ones_are_reuse,
);

/// One refresh_token grant request: `client` authenticates with private_key_jwt and `prover`, if
/// any, signs the DPoP proof.
pub async fn refresh_with(
    app: &TestApp,
    client: &TestDevice,
    refresh_token: &str,
    prover: Option<&TestDevice>,
) -> reqwest::Response {
    let now = app.now();
    let assertion = client.assertion(now);
    let proof = prover.map(|p| p.dpop("POST", "/oauth/token", now));
    let headers: Vec<(&str, &str)> = proof.iter().map(|p| ("DPoP", p.as_str())).collect();
    app.post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
        &headers,
    )
    .await
}

/// A refresh by `device` with its own DPoP key.
pub async fn refresh(app: &TestApp, device: &TestDevice, refresh_token: &str) -> reqwest::Response {
    refresh_with(app, device, refresh_token, Some(device)).await
}

/// A refresh that must succeed; returns the token response.
pub async fn refreshed(app: &TestApp, device: &TestDevice, refresh_token: &str) -> Value {
    let res = refresh(app, device, refresh_token).await;
    assert_eq!(res.status(), 200, "refresh failed");
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// A key the device does not hold, wrapped so it can sign proofs.
fn impostor_of(device: &TestDevice) -> TestDevice {
    TestDevice {
        serial: device.serial.clone(),
        key: Signer::es256(),
        issuer: device.issuer.clone(),
    }
}

async fn each_use_rotates_the_refresh_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2001").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);

    let second = refresh_token_of(&refreshed(&app, &device, &first).await);
    assert_ne!(second, first, "a refresh answers with a new refresh token");
    assert!(second.starts_with("pgr_"));
    let third = refresh_token_of(&refreshed(&app, &device, &second).await);
    assert_ne!(third, second);
    assert_ne!(third, first);

    // Once the retry grace (30 s) is over, a used token is never accepted again.
    app.advance(30);
    let body = error_of(refresh(&app, &device, &second).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
}

async fn reuse_of_a_consumed_token_revokes_the_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2002").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);
    let second = refresh_token_of(&refreshed(&app, &device, &first).await);
    let newest = refresh_token_of(&refreshed(&app, &device, &second).await);

    // Someone replays the first token (a copy of it leaked)...
    let body = error_of(refresh(&app, &device, &first).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    // ...so the newest token of the family, never used, is dead too.
    let body = error_of(refresh(&app, &device, &newest).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the refresh token was revoked");

    let events = app.ctx.store.audit_page(None, None, 100).await.unwrap();
    let reuse: Vec<_> = events
        .iter()
        .filter(|e| e.action == "token.refresh_reuse_detected")
        .collect();
    assert_eq!(reuse.len(), 1, "one reuse, one event");
    let counted = app.metric("pairgate_oauth_refresh_token_reuse_total").await;
    assert_eq!(counted, Some(1.0), "one reuse counted");
    assert_eq!(reuse[0].actor, "client:SN-2002");
    assert_eq!(reuse[0].tenant_id, Some(tenant));
    let detail: Value = serde_json::from_str(&reuse[0].detail).unwrap();
    assert!(detail["family"].is_string(), "{detail}");
    assert_eq!(detail["revoked"], true, "{detail}");
    assert!(
        !reuse[0].detail.contains("pgr_"),
        "tokens never reach the audit log"
    );
}

async fn the_refresh_token_is_bound_to_its_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let owner = app.device("SN-2004").await;
    let thief = app.device("SN-2005").await;
    let token = refresh_token_of(&app.pair(&owner, tenant).await);

    // Another registered device, authenticating perfectly well as itself.
    let body = error_of(refresh(&app, &thief, &token).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the refresh token was issued to another client"
    );
    // The attempt neither consumed nor revoked the owner's token.
    refreshed(&app, &owner, &token).await;
}

async fn the_refresh_token_is_bound_to_the_dpop_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2006").await;
    let token = refresh_token_of(&app.pair(&device, tenant).await);

    // The right client, but a proof by another key.
    let impostor = impostor_of(&device);
    let body = error_of(
        refresh_with(&app, &device, &token, Some(&impostor)).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_dpop_proof");
    // The right client, and no proof at all.
    let body = error_of(refresh_with(&app, &device, &token, None).await, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof");
    // Neither attempt used the token up.
    let tokens = refreshed(&app, &device, &token).await;
    assert_eq!(tokens["token_type"], "DPoP");
}

async fn an_idle_refresh_token_expires(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\nrefresh_token_idle_secs = 100\nrefresh_token_absolute_secs = 10000")
        .start()
        .await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2007").await;
    let mut token = refresh_token_of(&app.pair(&device, tenant).await);

    // Used within the idle time, again and again: each new token restarts the idle clock, well
    // past the first token's idle limit.
    for _ in 0..3 {
        app.advance(99);
        token = refresh_token_of(&refreshed(&app, &device, &token).await);
    }
    // Left unused for the idle time: expired.
    app.advance(100);
    let body = error_of(refresh(&app, &device, &token).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the refresh token has expired");
}

async fn a_token_family_ends_at_its_absolute_lifetime(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\nrefresh_token_idle_secs = 100\nrefresh_token_absolute_secs = 250")
        .start()
        .await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2008").await;
    let mut token = refresh_token_of(&app.pair(&device, tenant).await);

    // Never idle for long, yet the chain ends 250 s after the pairing.
    for step in [90, 90, 60] {
        app.advance(step);
        token = refresh_token_of(&refreshed(&app, &device, &token).await);
    }
    app.advance(10);
    let body = error_of(refresh(&app, &device, &token).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the refresh token has expired");
}

async fn the_new_access_token_keeps_tenant_and_key_binding(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let device = app.device("SN-2009").await;
    let paired = app.pair(&device, tenant).await;
    let before =
        super::discovery::verify_with_jwks(&app, paired["access_token"].as_str().unwrap()).await;

    app.advance(300);
    let tokens = refreshed(&app, &device, &refresh_token_of(&paired)).await;
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["scope"], "telemetry:write");
    assert_ne!(tokens["access_token"], paired["access_token"]);

    let after =
        super::discovery::verify_with_jwks(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(after["tenant_id"], tenant.get());
    assert_eq!(after["cnf"]["jkt"], device.key.thumbprint());
    assert_eq!(after["sub"], "device:SN-2009");
    assert_eq!(after["client_id"], "SN-2009");
    assert_eq!(after["device"], "SN-2009");
    assert_eq!(after["scope"], "telemetry:write");
    assert_eq!(after["iat"], app.now());
    assert_eq!(after["exp"], app.now() + 600);
    assert_ne!(after["jti"], before["jti"]);
    for same in [
        "tenant_id",
        "cnf",
        "sub",
        "client_id",
        "device",
        "aud",
        "iss",
        "gen",
    ] {
        assert_eq!(after[same], before[same], "{same} changed on refresh");
    }
}

/// The token endpoint keeps recently authenticated clients in memory (`oauth::client_cache`):
/// the write transaction must still see a client disabled behind its back, refuse without
/// consuming anything, and let the device in again once it is enabled.
async fn a_device_disabled_after_it_authenticated_is_refused_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2901").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);
    // Authenticated twice now: the client is certainly cached.
    let second = refresh_token_of(&refreshed(&app, &device, &first).await);

    set_status(&app, "SN-2901", ActiveStatus::Disabled).await;
    let res = refresh(&app, &device, &second).await;
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "unknown or disabled client");

    // Nothing was consumed: once enabled again the same refresh token works.
    set_status(&app, "SN-2901", ActiveStatus::Active).await;
    let third = refresh_token_of(&refreshed(&app, &device, &second).await);
    assert_ne!(third, second);
}

/// Used tokens leave no rows behind: the family's row keeps the counter of its current token.
async fn a_family_is_one_row_however_often_it_rotates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2010").await;
    let mut token = refresh_token_of(&app.pair(&device, tenant).await);
    for _ in 0..5 {
        token = refresh_token_of(&refreshed(&app, &device, &token).await);
    }
    let rows = "SELECT COUNT(*) AS n FROM refresh_families WHERE client_id = 'SN-2010'";
    assert_eq!(app.query_i64(rows).await, 1);
    let counter = "SELECT counter AS n FROM refresh_families WHERE client_id = 'SN-2010'";
    assert_eq!(
        app.query_i64(counter).await,
        6,
        "pairing issued 1, five refreshes"
    );
    // No column holds a token; the one the device holds is not in the table in any form.
    let family = app
        .query_i64(&format!(
            "SELECT COUNT(*) AS n FROM refresh_families WHERE family_id = '{token}' \
             OR legacy_hash = '{}'",
            pairgate::crypto::tokens::hash_token(&token)
        ))
        .await;
    assert_eq!(family, 0);
}

/// A token whose MAC fails, e.g. the current token with its counter moved back, is not
/// pairgate's: it is refused as unknown and must not let anyone revoke the family.
async fn a_token_the_mac_does_not_vouch_for_is_unknown_and_revokes_nothing(backend: Backend) {
    use pairgate::crypto::jose;
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2011").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);
    let second = refresh_token_of(&refreshed(&app, &device, &first).await);
    // version (1 byte), then the counter (8 bytes, big-endian): 2 becomes 1.
    let mut payload = jose::b64_decode(second.strip_prefix("pgr_").unwrap()).unwrap();
    assert_eq!(payload[8], 2, "the counter's last byte");
    payload[8] = 1;
    let moved_back = format!("pgr_{}", jose::b64(&payload));
    assert_ne!(
        moved_back, first,
        "the MAC differs from the real first token's"
    );
    let mut payload = jose::b64_decode(second.strip_prefix("pgr_").unwrap()).unwrap();
    payload[20] ^= 0x40;
    let bad_mac = format!("pgr_{}", jose::b64(&payload));
    for forged in [moved_back, bad_mac] {
        let body = error_of(refresh(&app, &device, &forged).await, 400).await;
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "unknown refresh token");
    }
    // The family lives on: its current token still works.
    refreshed(&app, &device, &second).await;
}

/// A database restored from a backup holds an older counter than the token a device holds.
/// The MAC says pairgate issued that token and nothing newer exists, so it is the current one;
/// the tokens before it are still reuse.
async fn after_a_restore_the_newest_token_still_works_and_older_ones_are_reuse(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-2012").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);
    let second = refresh_token_of(&refreshed(&app, &device, &first).await);
    let third = refresh_token_of(&refreshed(&app, &device, &second).await);
    // The "backup" was taken when the second token was current.
    app.raw_sql("UPDATE refresh_families SET counter = 2 WHERE client_id = 'SN-2012'")
        .await;
    let fourth = refresh_token_of(&refreshed(&app, &device, &third).await);
    let counter = "SELECT counter AS n FROM refresh_families WHERE client_id = 'SN-2012'";
    assert_eq!(app.query_i64(counter).await, 4);
    let body = error_of(refresh(&app, &device, &second).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    let body = error_of(refresh(&app, &device, &fourth).await, 400).await;
    assert_eq!(body["error_description"], "the refresh token was revoked");
}
