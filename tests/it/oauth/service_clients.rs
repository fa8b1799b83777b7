//! The client_credentials grant (RFC 6749 §4.4) for service clients: secrets (Basic and post,
//! §2.3.1) and private_key_jwt (RFC 7523), scopes from the registry, optional DPoP binding
//! (RFC 9449 §5), and the grants each kind of client may not use.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::error_of;
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, DEVICE_CODE_GRANT, JWT_BEARER, TestApp};

backend_tests!(
    a_secret_in_basic_authentication_gets_a_bearer_token,
    a_secret_in_the_body_gets_a_bearer_token,
    private_key_jwt_gets_a_bearer_token,
    scopes_come_from_the_registry,
    a_dpop_proof_binds_the_token_to_its_key,
    devices_may_not_use_client_credentials,
    service_clients_may_not_use_the_device_flow,
);

/// `Authorization: Basic` as RFC 6749 §2.3.1 builds it (id and secret are already URL-safe).
pub fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// A client_credentials request with client_secret_basic and an optional scope.
async fn with_secret(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    app.post_form(
        "/oauth/token",
        &form,
        &[("Authorization", &basic(client_id, secret))],
    )
    .await
}

/// A client_credentials request with private_key_jwt, plus extra form fields and headers.
async fn with_key(
    app: &TestApp,
    client: &TestDevice,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let assertion = client.assertion(app.now());
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion),
    ];
    form.extend_from_slice(extra);
    app.post_form("/oauth/token", &form, headers).await
}

/// Checks a successful client_credentials response and returns it with the verified claims.
async fn issued(app: &TestApp, res: reqwest::Response) -> (Value, Value) {
    assert_eq!(res.status(), 200, "client_credentials failed");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token for client credentials"
    );
    assert_eq!(body["expires_in"], 600);
    let claims =
        super::discovery::verify_with_jwks(app, body["access_token"].as_str().unwrap()).await;
    (body, claims)
}

fn assert_service_claims(claims: &Value, client_id: &str) {
    assert_eq!(claims["sub"], format!("client:{client_id}"));
    assert_eq!(claims["client_id"], client_id);
    for device_only in ["tenant_id", "device", "gen"] {
        assert!(
            claims.get(device_only).is_none(),
            "{device_only} in {claims}"
        );
    }
}

async fn a_secret_in_basic_authentication_gets_a_bearer_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("erp").await;
    let (body, claims) = issued(&app, with_secret(&app, &id, &secret, None).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "erp");
    assert_eq!(claims["scope"], "erp");
    assert!(claims.get("cnf").is_none());
    assert_service_claims(&claims, &id);

    // The same client with a wrong secret: 401 with a Basic challenge (RFC 6749 §5.2).
    let res = with_secret(&app, &id, "not-the-secret", None).await;
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_of(res, 401).await["error"], "invalid_client");
}

async fn a_secret_in_the_body_gets_a_bearer_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("erp").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            &[],
        )
        .await;
    let (body, claims) = issued(&app, res).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "erp");
    assert_service_claims(&claims, &id);

    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "not-the-secret"),
            ],
            &[],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_client");
}

async fn private_key_jwt_gets_a_bearer_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key("erp", Signer::ed25519()).await;
    let (body, claims) = issued(&app, with_key(&app, &client, &[], &[]).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "erp");
    assert!(claims.get("cnf").is_none());
    assert_service_claims(&claims, &client.serial);

    // An assertion signed by a key the registry does not hold.
    let forger = TestDevice {
        serial: client.serial.clone(),
        key: Signer::ed25519(),
        issuer: client.issuer.clone(),
    };
    let res = with_key(&app, &forger, &[], &[]).await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_client");
}

async fn scopes_come_from_the_registry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("erp telemetry:read").await;

    // No scope asked for: everything registered.
    let (body, claims) = issued(&app, with_secret(&app, &id, &secret, None).await).await;
    assert_eq!(body["scope"], "erp telemetry:read");
    assert_eq!(claims["scope"], "erp telemetry:read");
    // A subset, in any order.
    let (body, claims) = issued(
        &app,
        with_secret(&app, &id, &secret, Some("telemetry:read")).await,
    )
    .await;
    assert_eq!(body["scope"], "telemetry:read");
    assert_eq!(claims["scope"], "telemetry:read");
    let (body, _) = issued(
        &app,
        with_secret(&app, &id, &secret, Some("telemetry:read erp")).await,
    )
    .await;
    let mut granted: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    granted.sort_unstable();
    assert_eq!(granted, ["erp", "telemetry:read"]);
    // Anything beyond the registration: invalid_scope, and no token.
    for beyond in ["erp telemetry:write", "telemetry:write", "admin"] {
        let body = error_of(with_secret(&app, &id, &secret, Some(beyond)).await, 400).await;
        assert_eq!(body["error"], "invalid_scope", "{beyond}");
        assert!(body.get("access_token").is_none());
    }
}

async fn a_dpop_proof_binds_the_token_to_its_key(backend: Backend) {
    let app = TestApp::start(backend).await;

    // private_key_jwt, the proof signed with the client's own key.
    let client = app.service_client_with_key("erp", Signer::es256()).await;
    let proof = client.dpop("POST", "/oauth/token", app.now());
    let res = with_key(&app, &client, &[], &[("DPoP", &proof)]).await;
    let (body, claims) = issued(&app, res).await;
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(claims["cnf"]["jkt"], client.key.thumbprint());

    // A secret client with a DPoP key of its own.
    let (id, secret) = app.service_client_with_secret("erp").await;
    let holder = TestDevice {
        serial: id.clone(),
        key: Signer::ed25519(),
        issuer: app.base.clone(),
    };
    let proof = holder.dpop("POST", "/oauth/token", app.now());
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret)), ("DPoP", &proof)],
        )
        .await;
    let (body, claims) = issued(&app, res).await;
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(claims["cnf"]["jkt"], holder.key.thumbprint());

    // The same proof again is a replay.
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret)), ("DPoP", &proof)],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_dpop_proof");

    // A proof for another endpoint binds nothing: refused.
    let wrong = holder.dpop("POST", "/oauth/introspect", app.now());
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret)), ("DPoP", &wrong)],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_dpop_proof");
}

async fn devices_may_not_use_client_credentials(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-3001").await;
    let proof = device.dpop("POST", "/oauth/token", app.now());
    let res = with_key(&app, &device, &[], &[("DPoP", &proof)]).await;
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "unauthorized_client");
    // Not even for its own scope.
    let res = with_key(&app, &device, &[("scope", "telemetry:write")], &[]).await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
}

async fn service_clients_may_not_use_the_device_flow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key("erp", Signer::es256()).await;
    let (id, secret) = app.service_client_with_secret("erp").await;

    // device_authorization, with private_key_jwt and a proof, as a device would send it...
    let now = app.now();
    let assertion = client.assertion(now);
    let proof = client.dpop("POST", "/oauth/device_authorization", now);
    let res = app
        .post_form(
            "/oauth/device_authorization",
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
    // ...or with a secret.
    let res = app
        .post_form(
            "/oauth/device_authorization",
            &[],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");

    // The device_code grant, with a code that a real device obtained.
    let device = app.device("SN-3002").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let now = app.now();
    let assertion = client.assertion(now);
    let proof = client.dpop("POST", "/oauth/token", now);
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", code),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", code),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            &[],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
    // The device's own flow is untouched.
    assert_eq!(
        error_of(app.poll(&device, code).await, 400).await["error"],
        "authorization_pending"
    );
}
