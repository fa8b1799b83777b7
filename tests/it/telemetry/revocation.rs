//! A device whose tokens were revoked, that was paired again, moved to another tenant or
//! disabled is refused at once (the generation, tenant and status are checked when the batch
//! commits), even while its token sits in the verified-token cache; so is one access token
//! revoked on its own (RFC 7009), and every access token of a refresh-token family that a reuse
//! revoked (RFC 9700 §4.14.2); an expired token is refused the moment it expires.

use pairgate::ids::DeviceSerial;
use pairgate::store::registry::{self, ActiveStatus};
use serde_json::json;

use super::{Paired, accepted, paired, readings, refusal, stored, upload};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    revoked_tokens_are_refused_at_once,
    pairing_again_retires_the_old_token,
    a_device_moved_to_another_tenant_is_refused,
    a_disabled_device_is_refused,
    an_expired_token_is_refused_even_when_cached,
    a_revoked_access_token_is_refused_at_once,
    a_refresh_token_reuse_stops_the_familys_access_tokens,
);

async fn assert_revoked(app: &TestApp, p: &Paired) {
    let (status, challenge, body) = refusal(upload(app, p, &readings(app, "late", 1)).await).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["error_description"],
        "the device's tokens have been revoked"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

async fn revoked_tokens_are_refused_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7301").await;
    // Twice, so the token is in the verified-token cache.
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "a", 2)).await).await,
        (2, 0)
    );
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "b", 2)).await).await,
        (2, 0)
    );
    let serial = p.device.serial.clone();
    app.ctx
        .store
        .write(move |tx| registry::revoke_device_tokens(tx, &DeviceSerial::from(&serial)))
        .await
        .unwrap();
    // No time passes: the very next upload is refused.
    assert_revoked(&app, &p).await;
    assert_eq!(stored(&app, "SN-7301").await, 4);
}

async fn pairing_again_retires_the_old_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let old = paired(&app, "SN-7302").await;
    assert_eq!(
        accepted(upload(&app, &old, &readings(&app, "a", 1)).await).await,
        (1, 0)
    );
    app.advance(5);
    let tokens = app.pair(&old.device, old.tenant).await;
    assert_revoked(&app, &old).await;
    // The new token is bound to the same factory key (the pairing's DPoP key).
    let current = Paired {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        ..old
    };
    assert_eq!(
        accepted(upload(&app, &current, &readings(&app, "b", 1)).await).await,
        (1, 0)
    );
}

async fn a_device_moved_to_another_tenant_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7303").await;
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "a", 1)).await).await,
        (1, 0)
    );
    let other = app.tenant("Someone Else").await;
    let (serial, at) = (p.device.serial.clone(), app.now() * 1000);
    // Even without a generation bump, the token names a tenant the device left.
    app.ctx
        .store
        .write(move |tx| super::move_device(tx, &serial, other, at))
        .await
        .unwrap();
    assert_revoked(&app, &p).await;
}

async fn a_disabled_device_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7304").await;
    let serial = p.device.serial.clone();
    app.ctx
        .store
        .write(move |tx| registry::set_client_status(tx, &serial, ActiveStatus::Disabled))
        .await
        .unwrap();
    assert_revoked(&app, &p).await;
}

async fn an_expired_token_is_refused_even_when_cached(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7305").await;
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "a", 1)).await).await,
        (1, 0)
    );
    // Access tokens live 600 s: one second before the end it still works...
    app.advance(599);
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "b", 1)).await).await,
        (1, 0)
    );
    // ...and at the end it does not.
    app.advance(1);
    let (status, _, body) = refusal(upload(&app, &p, &readings(&app, "c", 1)).await).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": "the access token has expired" })
    );
    // A refreshed token carries on.
    let assertion = p.device.assertion(app.now());
    let proof = p.device.dpop("POST", "/oauth/token", app.now());
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &p.refresh_token),
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let fresh = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = Paired {
        access_token: fresh,
        ..p
    };
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "c", 1)).await).await,
        (1, 0)
    );
}

/// `POST /oauth/revoke` of one access token by the device itself (private_key_jwt).
async fn revoke(app: &TestApp, p: &Paired, token: &str) {
    let assertion = p.device.assertion(app.now());
    let res = app
        .post_form(
            "/oauth/revoke",
            &[
                ("token", token),
                ("token_type_hint", "access_token"),
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn a_revoked_access_token_is_refused_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7306").await;
    // Twice, so the token is in the verified-token cache.
    for batch in ["a", "b"] {
        assert_eq!(
            accepted(upload(&app, &p, &readings(&app, batch, 1)).await).await,
            (1, 0)
        );
    }
    revoke(&app, &p, &p.access_token).await;
    // No time passes: the very next upload is refused, as the ERP API would refuse it.
    let (status, challenge, body) = refusal(upload(&app, &p, &readings(&app, "c", 1)).await).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        json!({
            "error": "invalid_token",
            "error_description": "the access token has been revoked"
        })
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(stored(&app, "SN-7306").await, 2);

    // Only that token: the refresh token still works, and so does the new access token.
    let tokens = crate::oauth::refresh::refreshed(&app, &p.device, &p.refresh_token).await;
    let current = Paired {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        ..p
    };
    assert_eq!(
        accepted(upload(&app, &current, &readings(&app, "d", 1)).await).await,
        (1, 0)
    );
}

/// A refresh token used after its family moved on (outside the retry grace) revokes the family:
/// the access token the family issued last stops at telemetry when the next batch commits, not
/// when it expires.
async fn a_refresh_token_reuse_stops_the_familys_access_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7307").await;
    let tokens = crate::oauth::refresh::refreshed(&app, &p.device, &p.refresh_token).await;
    let current = Paired {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        ..p
    };
    assert_eq!(
        accepted(upload(&app, &current, &readings(&app, "a", 1)).await).await,
        (1, 0)
    );
    // Someone replays the first refresh token a minute later.
    app.advance(60);
    let res = crate::oauth::refresh::refresh(&app, &current.device, &p.refresh_token).await;
    assert_eq!(res.status(), 400);
    assert_revoked(&app, &current).await;
    assert_eq!(stored(&app, "SN-7307").await, 1);
}
