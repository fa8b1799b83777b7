//! Client authentication (RFC 6749 §2.3, RFC 7523 §2.2 and §3): private_key_jwt for service
//! clients and devices, client_secret_basic and client_secret_post for service clients, and what
//! happens when a request mixes or misuses them. Exercised with the client_credentials grant at the
//! token endpoint and at the device authorization endpoint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pairgate::crypto::jose;
use pairgate::store::registry::{self, ActiveStatus, ClientKind, NewClient};
use serde_json::{Value, json};

use super::error_of;
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice, random_id};
use crate::support::{Backend, DEVICE_CODE_GRANT, JWT_BEARER, TestApp};

backend_tests!(
    es256_and_eddsa_assertions_authenticate_service_clients,
    eddsa_device_pairs_with_private_key_jwt,
    audience_is_the_issuer_or_the_token_endpoint,
    iss_and_sub_must_both_be_the_client_id,
    expired_assertions_are_refused_after_the_skew,
    assertion_lifetime_is_capped,
    assertion_issued_in_the_future_is_refused,
    assertion_not_yet_valid_is_refused,
    assertion_needs_a_usable_jti,
    replayed_assertion_is_refused,
    jti_values_are_scoped_per_client,
    signature_by_another_key_is_refused,
    unsigned_and_hmac_assertions_are_refused,
    unknown_clients_are_refused,
    disabled_clients_are_refused,
    client_assertion_type_must_be_jwt_bearer,
    one_authentication_method_at_a_time,
    client_secret_basic_success_and_failure,
    client_secret_post_success_and_failure,
    basic_credentials_are_form_urlencoded,
    devices_cannot_use_a_secret,
    each_client_kind_stays_on_its_own_endpoints,
    client_authentication_is_required,
    client_ids_outside_vschar_name_no_client,
);

const SCOPE: &str = "erp:read erp:write";

/// `Authorization: Basic` as RFC 6749 §2.3.1 builds it: id and secret form-urlencoded first.
pub(super) fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A client_credentials request authenticated by `assertion`.
async fn with_assertion(app: &TestApp, assertion: &str) -> reqwest::Response {
    app.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
        &[],
    )
    .await
}

/// A device authorization request authenticated by `assertion`, with a good DPoP proof.
async fn device_authorization_with(
    app: &TestApp,
    device: &TestDevice,
    assertion: &str,
) -> reqwest::Response {
    let proof = device.dpop("POST", "/oauth/device_authorization", app.now());
    app.post_form(
        "/oauth/device_authorization",
        &[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
        &[("DPoP", &proof)],
    )
    .await
}

/// Asserts a 400 invalid_client (no Basic involved, so no `WWW-Authenticate`).
async fn assert_invalid_client(res: reqwest::Response, case: &str) -> Value {
    assert_eq!(res.status(), 400, "{case}: status");
    assert!(
        res.headers().get("www-authenticate").is_none(),
        "{case}: no Basic challenge expected"
    );
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "invalid_client", "{case}: {body}");
    body
}

async fn assert_token(res: reqwest::Response, case: &str) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{case}: {body}");
    assert!(body["access_token"].is_string(), "{case}: {body}");
    body
}

/// A compact JWS with the given header and claims, and any signature.
fn forged(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        jose::b64(header.to_string()),
        jose::b64(claims.to_string()),
        jose::b64(signature)
    )
}

fn claims_for(client_id: &str, issuer: &str, now: i64) -> Value {
    json!({
        "iss": client_id, "sub": client_id, "aud": issuer,
        "iat": now, "exp": now + 60, "jti": random_id(),
    })
}

async fn es256_and_eddsa_assertions_authenticate_service_clients(backend: Backend) {
    let app = TestApp::start(backend).await;
    for key in [Signer::es256(), Signer::ed25519()] {
        let alg = key.alg();
        let client = app.service_client_with_key(SCOPE, key).await;
        let res = with_assertion(&app, &client.assertion(app.now())).await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body = assert_token(res, alg).await;
        assert_eq!(
            body["token_type"], "Bearer",
            "{alg}: no DPoP proof was sent"
        );
        assert_eq!(body["scope"], SCOPE);
        assert!(body.get("refresh_token").is_none(), "{alg}: {body}");
        let claims =
            super::discovery::verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
        assert_eq!(claims["client_id"], client.serial.as_str(), "{alg}");
        assert_eq!(claims["sub"], format!("client:{}", client.serial), "{alg}");
        assert!(claims.get("cnf").is_none(), "{alg}: {claims}");
    }
}

async fn eddsa_device_pairs_with_private_key_jwt(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device_with_key("SN-ED-1", Signer::ed25519()).await;
    let tokens = app.pair(&device, tenant).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let claims =
        super::discovery::verify_with_jwks(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], "SN-ED-1");
    assert_eq!(claims["cnf"]["jkt"], device.key.thumbprint());
}

async fn audience_is_the_issuer_or_the_token_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    for aud in [
        json!(app.base),
        json!(app.url("/oauth/token")),
        json!(["https://someone-else.example", app.base]),
    ] {
        let res = with_assertion(&app, &client.assertion_with(now, json!({ "aud": aud }))).await;
        assert_token(res, &format!("aud {aud}")).await;
    }
    for aud in [
        Value::Null,
        json!(""),
        json!("https://someone-else.example"),
        json!(format!("{}/", app.base)),
        json!(app.url("/oauth/token/")),
        json!(app.url("/oauth/device_authorization")),
        json!(app.url("/oauth/introspect")),
        json!(app.base.replace("127.0.0.1", "localhost")),
        json!([]),
        json!(["https://someone-else.example"]),
        json!({ "aud": app.base }),
        json!(42),
    ] {
        let res = with_assertion(&app, &client.assertion_with(now, json!({ "aud": aud }))).await;
        let body = assert_invalid_client(res, &format!("aud {aud}")).await;
        if !aud.is_null() {
            assert_eq!(
                body["error_description"],
                "the client assertion's aud must be the issuer or the token endpoint"
            );
        }
    }
    // The same holds at the device authorization endpoint.
    let device = app.device("SN-AUD-1").await;
    let wrong = device.assertion_with(
        now,
        json!({ "aud": app.url("/oauth/device_authorization") }),
    );
    assert_invalid_client(
        device_authorization_with(&app, &device, &wrong).await,
        "device, aud = endpoint",
    )
    .await;
    let right = device.assertion_with(now, json!({ "aud": app.url("/oauth/token") }));
    assert_eq!(
        device_authorization_with(&app, &device, &right)
            .await
            .status(),
        200
    );
}

async fn iss_and_sub_must_both_be_the_client_id(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let other = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let id = client.serial.as_str();
    let cases = [
        ("iss is another client", json!({ "iss": other.serial })),
        ("sub is another client", json!({ "sub": other.serial })),
        ("no iss", json!({ "iss": null })),
        ("no sub", json!({ "sub": null })),
        ("iss not a string", json!({ "iss": 1, "sub": 1 })),
        (
            "iss = sub = another client, signed with this key",
            json!({ "iss": other.serial, "sub": other.serial }),
        ),
    ];
    for (case, overrides) in cases {
        let res = with_assertion(&app, &client.assertion_with(now, overrides)).await;
        assert_invalid_client(res, case).await;
    }
    // A client_id parameter, when sent, must name the same client.
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &other.serial),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &client.assertion(now)),
            ],
            &[],
        )
        .await;
    assert_invalid_client(res, "client_id names another client").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &client.assertion(now)),
            ],
            &[],
        )
        .await;
    assert_token(res, "matching client_id").await;
}

async fn expired_assertions_are_refused_after_the_skew(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "iat": now - 120, "exp": now - 60 })),
    )
    .await;
    let body = assert_invalid_client(res, "expired a minute ago").await;
    assert_eq!(
        body["error_description"],
        "the client assertion has expired"
    );
    let res = with_assertion(&app, &client.assertion_with(now, json!({ "exp": null }))).await;
    assert_invalid_client(res, "no exp").await;
    let res = with_assertion(&app, &client.assertion_with(now, json!({ "exp": "soon" }))).await;
    assert_invalid_client(res, "exp not a number").await;

    // Valid for 60 s, plus the configured 30 s of clock skew, and not one second more.
    let early = client.assertion(now);
    let late = client.assertion(now);
    app.advance(89);
    assert_token(with_assertion(&app, &early).await, "within the skew").await;
    app.advance(2);
    assert_invalid_client(with_assertion(&app, &late).await, "past the skew").await;
}

async fn assertion_lifetime_is_capped(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let accepted = [
        ("exactly 300 s", json!({ "exp": now + 300 })),
        ("300 s, no iat", json!({ "iat": null, "exp": now + 300 })),
    ];
    for (case, overrides) in accepted {
        assert_token(
            with_assertion(&app, &client.assertion_with(now, overrides)).await,
            case,
        )
        .await;
    }
    let refused = [
        ("301 s", json!({ "exp": now + 301 })),
        ("301 s, no iat", json!({ "iat": null, "exp": now + 301 })),
        ("a day", json!({ "exp": now + 86_400 })),
        (
            "issued long ago, still valid",
            json!({ "iat": now - 250, "exp": now + 60 }),
        ),
        (
            "issued at the dawn of time, valid forever",
            json!({ "iat": i64::MIN, "exp": i64::MAX }),
        ),
        ("float extremes", json!({ "iat": -1e300, "exp": 1e300 })),
        ("u64 exp", json!({ "exp": u64::MAX })),
    ];
    for (case, overrides) in refused {
        let res = with_assertion(&app, &client.assertion_with(now, overrides)).await;
        let body = assert_invalid_client(res, case).await;
        assert_eq!(
            body["error_description"], "the client assertion's lifetime is too long",
            "{case}"
        );
    }
}

async fn assertion_issued_in_the_future_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "iat": now + 31, "exp": now + 90 })),
    )
    .await;
    let body = assert_invalid_client(res, "iat 31 s ahead").await;
    assert_eq!(
        body["error_description"],
        "the client assertion's iat is in the future"
    );
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "iat": now + 3600, "exp": now + 3660 })),
    )
    .await;
    assert_invalid_client(res, "iat an hour ahead").await;
    // A clock 29 s fast is within the configured skew.
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "iat": now + 29, "exp": now + 89 })),
    )
    .await;
    assert_token(res, "iat 29 s ahead").await;
}

async fn assertion_not_yet_valid_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "nbf": now + 45 })),
    )
    .await;
    let body = assert_invalid_client(res, "nbf ahead").await;
    assert_eq!(
        body["error_description"],
        "the client assertion is not valid yet"
    );
    let res = with_assertion(&app, &client.assertion_with(now, json!({ "nbf": now }))).await;
    assert_token(res, "nbf now").await;
}

async fn assertion_needs_a_usable_jti(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    for (case, jti) in [
        ("no jti", Value::Null),
        ("empty jti", json!("")),
        ("numeric jti", json!(12345)),
        ("oversized jti", json!("j".repeat(257))),
        ("jti with a NUL", json!("a\u{0}b")),
    ] {
        let res = with_assertion(&app, &client.assertion_with(now, json!({ "jti": jti }))).await;
        let body = assert_invalid_client(res, case).await;
        assert_eq!(
            body["error_description"], "the client assertion needs a jti",
            "{case}"
        );
    }
    let res = with_assertion(
        &app,
        &client.assertion_with(now, json!({ "jti": "j".repeat(256) })),
    )
    .await;
    assert_token(res, "256-character jti").await;
}

async fn replayed_assertion_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let assertion = client.assertion(now);
    assert_token(with_assertion(&app, &assertion).await, "first use").await;
    let body = assert_invalid_client(with_assertion(&app, &assertion).await, "replay").await;
    assert_eq!(
        body["error_description"],
        "the client assertion was used before"
    );
    insta::assert_json_snapshot!("client_auth_replayed_assertion_error", body);
    // Another jti with the same claims otherwise is fine.
    assert_token(
        with_assertion(&app, &client.assertion(now)).await,
        "fresh jti",
    )
    .await;

    // A device's assertion used to start pairing cannot be used again, at any endpoint.
    let device = app.device("SN-REPLAY-1").await;
    let assertion = device.assertion(now);
    assert_eq!(
        device_authorization_with(&app, &device, &assertion)
            .await
            .status(),
        200
    );
    assert_invalid_client(
        device_authorization_with(&app, &device, &assertion).await,
        "device replay",
    )
    .await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", "whatever"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &device.dpop("POST", "/oauth/token", now))],
        )
        .await;
    assert_invalid_client(res, "device replay at the token endpoint").await;
}

async fn jti_values_are_scoped_per_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let b = app.service_client_with_key(SCOPE, Signer::ed25519()).await;
    let now = app.now();
    // One client cannot burn another's jti values.
    let jti = json!({ "jti": "shared-jti-1" });
    assert_token(
        with_assertion(&app, &a.assertion_with(now, jti.clone())).await,
        "client a",
    )
    .await;
    assert_token(
        with_assertion(&app, &b.assertion_with(now, jti.clone())).await,
        "client b",
    )
    .await;
    assert_invalid_client(
        with_assertion(&app, &a.assertion_with(now, jti)).await,
        "client a again",
    )
    .await;
}

async fn signature_by_another_key_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    for key in [Signer::es256(), Signer::ed25519()] {
        let impostor = TestDevice {
            serial: client.serial.clone(),
            key,
            issuer: app.base.clone(),
        };
        let res = with_assertion(&app, &impostor.assertion(now)).await;
        let body = assert_invalid_client(res, impostor.key.alg()).await;
        assert_eq!(
            body["error_description"],
            "the client assertion's signature does not verify"
        );
    }
    // A genuine signature over other claims: swap the payload of a valid assertion.
    let genuine = client.assertion(now);
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut claims = claims_for(&client.serial, &app.base, now);
    claims["exp"] = json!(now + 300);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        jose::b64(claims.to_string()),
        parts[2]
    );
    assert_invalid_client(with_assertion(&app, &tampered).await, "swapped payload").await;
    // A corrupted signature.
    let mut sig = jose::b64_decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let corrupted = format!("{}.{}.{}", parts[0], parts[1], jose::b64(sig));
    assert_invalid_client(with_assertion(&app, &corrupted).await, "flipped bit").await;
    // The genuine one still works: none of the above burnt its jti.
    assert_token(with_assertion(&app, &genuine).await, "genuine").await;
}

async fn unsigned_and_hmac_assertions_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    let claims = claims_for(&client.serial, &app.base, now);
    let none = format!(
        "{}.{}.",
        jose::b64(json!({"alg": "none", "typ": "JWT"}).to_string()),
        jose::b64(claims.to_string())
    );
    let none_with_sig = forged(&json!({"alg": "none"}), &claims, b"signature");
    // The classic confusion: HMAC keyed with the client's public key.
    let public_key = client.key.jwk().to_string();
    let hs_header = json!({"alg": "HS256", "typ": "JWT"});
    let input = format!(
        "{}.{}",
        jose::b64(hs_header.to_string()),
        jose::b64(claims.to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_key.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let hs256 = format!("{input}.{}", jose::b64(tag.as_ref()));
    let rs256 = forged(&json!({"alg": "RS256"}), &claims, &[7; 256]);
    let no_alg = forged(&json!({"typ": "JWT"}), &claims, &[7; 64]);
    let crit = forged(&json!({"alg": "ES256", "crit": ["exp"]}), &claims, &[7; 64]);
    for (case, assertion) in [
        ("alg none", none),
        ("alg none with a signature", none_with_sig),
        ("HS256 keyed with the public key", hs256),
        ("RS256", rs256),
        ("no alg", no_alg),
        ("crit", crit),
    ] {
        let body = assert_invalid_client(with_assertion(&app, &assertion).await, case).await;
        assert_eq!(
            body["error_description"],
            "the client assertion is not a valid JWS with an allowed alg",
            "{case}"
        );
    }
}

async fn unknown_clients_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let now = app.now();
    let ghost = TestDevice {
        serial: "SN-NEVER-REGISTERED".to_owned(),
        key: Signer::es256(),
        issuer: app.base.clone(),
    };
    let body = assert_invalid_client(
        with_assertion(&app, &ghost.assertion(now)).await,
        "unknown, assertion",
    )
    .await;
    assert_eq!(body["error_description"], "unknown or disabled client");
    assert_invalid_client(
        device_authorization_with(&app, &ghost, &ghost.assertion(now)).await,
        "unknown device",
    )
    .await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "guess"),
            ],
            &[],
        )
        .await;
    assert_invalid_client(res, "unknown, client_secret_post").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic("nobody", "guess"))],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
}

/// Disables or re-enables a client behind the API's back.
pub(super) async fn set_status(app: &TestApp, client_id: &str, status: ActiveStatus) {
    let id = client_id.to_owned();
    let changed = app
        .ctx
        .store
        .write(move |tx| registry::set_client_status(tx, &id, status))
        .await
        .unwrap();
    assert!(changed, "{client_id} exists");
}

async fn disabled_clients_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let keyed = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let device = app.device("SN-OFF-1").await;
    let secret_post = |app: &TestApp| {
        let (id, secret) = (id.clone(), secret.clone());
        let url = app.url("/oauth/token");
        let client = app.client.clone();
        async move {
            client
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let now = app.now();
    assert_token(with_assertion(&app, &keyed.assertion(now)).await, "keyed").await;
    assert_token(secret_post(&app).await, "secret").await;
    assert_eq!(app.device_authorization(&device).await.status(), 200);

    for client_id in [keyed.serial.as_str(), id.as_str(), "SN-OFF-1"] {
        set_status(&app, client_id, ActiveStatus::Disabled).await;
    }
    let body =
        assert_invalid_client(with_assertion(&app, &keyed.assertion(now)).await, "keyed").await;
    assert_eq!(body["error_description"], "unknown or disabled client");
    assert_invalid_client(secret_post(&app).await, "secret").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    assert_eq!(res.status(), 401, "disabled, Basic");
    assert_invalid_client(app.device_authorization(&device).await, "device").await;

    // Enabled again, they work again.
    for client_id in [keyed.serial.as_str(), id.as_str(), "SN-OFF-1"] {
        set_status(&app, client_id, ActiveStatus::Active).await;
    }
    assert_token(with_assertion(&app, &keyed.assertion(now)).await, "keyed").await;
    assert_token(secret_post(&app).await, "secret").await;
    assert_eq!(app.device_authorization(&device).await.status(), 200);
}

async fn client_assertion_type_must_be_jwt_bearer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let now = app.now();
    for assertion_type in [
        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "URN:IETF:PARAMS:OAUTH:CLIENT-ASSERTION-TYPE:JWT-BEARER",
        "jwt",
    ] {
        let res = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", assertion_type),
                    ("client_assertion", &client.assertion(now)),
                ],
                &[],
            )
            .await;
        let body = assert_invalid_client(res, assertion_type).await;
        assert_eq!(
            body["error_description"],
            "unsupported client_assertion_type"
        );
    }
    // One without the other is a malformed request.
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_assertion", "a.b.c"),
        ],
    ] {
        let body = error_of(app.post_form("/oauth/token", &form, &[]).await, 400).await;
        assert_eq!(body["error"], "invalid_request", "{form:?}");
    }
}

async fn one_authentication_method_at_a_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    let keyed = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let now = app.now();
    let authorization = basic(&id, &secret);
    let assertion = keyed.assertion(now);
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Pairs, Pairs)> = vec![
        (
            "Basic and an assertion",
            vec![
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            vec![("Authorization", &authorization)],
        ),
        (
            "Basic and client_secret",
            vec![("client_id", &id), ("client_secret", &secret)],
            vec![("Authorization", &authorization)],
        ),
        (
            "client_secret and an assertion",
            vec![
                ("client_id", &id),
                ("client_secret", &secret),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            vec![],
        ),
    ];
    for (case, mut form, headers) in cases {
        form.push(("grant_type", "client_credentials"));
        let res = app.post_form("/oauth/token", &form, &headers).await;
        assert!(res.headers().get("www-authenticate").is_none(), "{case}");
        let body = error_of(res, 400).await;
        assert_eq!(body["error"], "invalid_request", "{case}: {body}");
        assert_eq!(
            body["error_description"],
            "use exactly one client authentication method"
        );
    }
    // Each method alone works (and the assertion was not burnt by the refusals).
    assert_token(with_assertion(&app, &assertion).await, "assertion alone").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &authorization)],
        )
        .await;
    assert_token(res, "Basic alone").await;
}

async fn client_secret_basic_success_and_failure(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let token = |authorization: String, extra: Vec<(&'static str, String)>| {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        form.extend(extra);
        let req = app
            .client
            .post(app.url("/oauth/token"))
            .header("Authorization", authorization)
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    let body = assert_token(token(basic(&id, &secret), vec![]).await, "good secret").await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], SCOPE);
    let claims =
        super::discovery::verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], id.as_str());
    // A client_id parameter naming the same client is allowed.
    assert_token(
        token(basic(&id, &secret), vec![("client_id", id.clone())]).await,
        "matching client_id",
    )
    .await;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let lower = basic(&id, &secret).replacen("Basic", "basic", 1);
    assert_token(token(lower, vec![]).await, "lower-case scheme").await;

    let mut wrong_secret = secret.clone();
    wrong_secret.pop();
    let failures = [
        ("wrong secret", basic(&id, "not-the-secret"), vec![]),
        ("truncated secret", basic(&id, &wrong_secret), vec![]),
        ("empty secret", basic(&id, ""), vec![]),
        ("unknown client", basic("no-such-client", &secret), vec![]),
        (
            "client_id names another client",
            basic(&id, &secret),
            vec![("client_id", "someone-else".to_owned())],
        ),
        ("not base64", "Basic !!!not-base64!!!".to_owned(), vec![]),
        (
            "no colon",
            format!("Basic {}", STANDARD.encode(&id)),
            vec![],
        ),
        (
            "empty id",
            format!("Basic {}", STANDARD.encode(format!(":{secret}"))),
            vec![],
        ),
        ("nothing after the scheme", "Basic".to_owned(), vec![]),
    ];
    for (case, authorization, extra) in failures {
        let res = token(authorization, extra).await;
        assert_eq!(res.status(), 401, "{case}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic "), "{case}: {challenge}");
        assert!(challenge.contains("realm="), "{case}: {challenge}");
        let body = error_of(res, 401).await;
        assert_eq!(body["error"], "invalid_client", "{case}");
    }
    // Another scheme is not client authentication at all.
    let res = token("Bearer abc".to_owned(), vec![]).await;
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "invalid_request");
}

async fn client_secret_post_success_and_failure(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let post = |client_id: Option<&str>, client_secret: &str| {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_secret", client_secret.to_owned()),
        ];
        if let Some(c) = client_id {
            form.push(("client_id", c.to_owned()));
        }
        post_form_owned(&app, "/oauth/token", form)
    };
    let body = assert_token(post(Some(&id), &secret).await, "good secret").await;
    assert_eq!(body["token_type"], "Bearer");
    let claims =
        super::discovery::verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], id.as_str());

    let upper = secret.to_uppercase();
    for (case, client_id, client_secret) in [
        ("wrong secret", Some(id.as_str()), "not-the-secret"),
        ("secret in another case", Some(id.as_str()), upper.as_str()),
        ("unknown client", Some("no-such-client"), secret.as_str()),
        ("no client_id", None, secret.as_str()),
    ] {
        let body = assert_invalid_client(post(client_id, client_secret).await, case).await;
        assert!(
            !body.to_string().contains(&secret),
            "{case}: the secret is never echoed"
        );
    }
}

/// `post_form` with owned values (for forms built in a loop).
async fn post_form_owned(
    app: &TestApp,
    path: &str,
    form: Vec<(&'static str, String)>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn basic_credentials_are_form_urlencoded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let cc = [("grant_type", "client_credentials")];
    // Every byte percent-encoded, as a cautious client might.
    let encode_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let authorization = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode_all(&id), encode_all(&secret)))
    );
    let res = app
        .post_form("/oauth/token", &cc, &[("Authorization", &authorization)])
        .await;
    assert_token(res, "all bytes percent-encoded").await;

    // A client whose id and secret need encoding: ':' '+' '%' ' ' and non-ASCII.
    let odd_id = "erp:main+1";
    let odd_secret = "s3cr:t+%2F ü";
    let record = NewClient {
        client_id: odd_id.to_owned(),
        kind: ClientKind::Service,
        name: "Odd ERP".to_owned(),
        jwks: None,
        secret_hash: Some(pairgate::oauth::client_auth::hash_secret(odd_secret)),
        scope: "erp:read".to_owned(),
        created_at: app.now() * 1000,
    };
    app.ctx
        .store
        .write(move |tx| registry::insert_client(tx, &record))
        .await
        .unwrap();
    let res = app
        .post_form(
            "/oauth/token",
            &cc,
            &[("Authorization", &basic(odd_id, odd_secret))],
        )
        .await;
    let body = assert_token(res, "form-urlencoded odd credentials").await;
    let claims =
        super::discovery::verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], odd_id);
    // Sent raw, the ':' in the id splits it and '+' decodes to a space: both fail.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{odd_id}:{odd_secret}"))
    );
    let res = app
        .post_form("/oauth/token", &cc, &[("Authorization", &raw)])
        .await;
    assert_eq!(res.status(), 401);
    // Bad percent-encoding (decoding to invalid UTF-8) is a failed authentication, not a crash.
    let bad = format!("Basic {}", STANDARD.encode(format!("{id}:%FF%FE")));
    let res = app
        .post_form("/oauth/token", &cc, &[("Authorization", &bad)])
        .await;
    assert_eq!(error_of(res, 401).await["error"], "invalid_client");
    // client_secret_post carries the same credentials in the form encoding of the body.
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", odd_id),
                ("client_secret", odd_secret),
            ],
            &[],
        )
        .await;
    assert_token(res, "client_secret_post, odd credentials").await;
}

async fn devices_cannot_use_a_secret(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-NOSECRET-1").await;
    let serial = device.serial.as_str();
    let now = app.now();
    let proof = device.dpop("POST", "/oauth/device_authorization", now);
    for guess in [
        "",
        "x",
        "secret",
        &pairgate::oauth::client_auth::hash_secret(""),
    ] {
        let res = app
            .post_form(
                "/oauth/device_authorization",
                &[("client_id", serial), ("client_secret", guess)],
                &[("DPoP", &proof)],
            )
            .await;
        assert_invalid_client(res, &format!("post {guess:?}")).await;
        let res = app
            .post_form(
                "/oauth/device_authorization",
                &[],
                &[("Authorization", &basic(serial, guess)), ("DPoP", &proof)],
            )
            .await;
        assert_eq!(res.status(), 401, "Basic {guess:?}");
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");
        let res = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", DEVICE_CODE_GRANT),
                    ("device_code", "x"),
                    ("client_id", serial),
                    ("client_secret", guess),
                ],
                &[("DPoP", &device.dpop("POST", "/oauth/token", now))],
            )
            .await;
        assert_invalid_client(res, &format!("token, post {guess:?}")).await;
    }
    // Its key still works.
    assert_eq!(app.device_authorization(&device).await.status(), 200);
}

async fn each_client_kind_stays_on_its_own_endpoints(backend: Backend) {
    let app = TestApp::start(backend).await;
    let keyed = app.service_client_with_key(SCOPE, Signer::es256()).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let device = app.device("SN-KIND-1").await;
    let now = app.now();
    // Service clients authenticate fine, but may not start a device authorization.
    let res = device_authorization_with(&app, &keyed, &keyed.assertion(now)).await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
    let res = app
        .post_form(
            "/oauth/device_authorization",
            &[],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
    // A device authenticates fine, but may not use client_credentials.
    let res = with_assertion(&app, &device.assertion(now)).await;
    assert_eq!(error_of(res, 400).await["error"], "unauthorized_client");
}

async fn client_authentication_is_required(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-ANON-1").await;
    let now = app.now();
    let res = app
        .post_form("/oauth/token", &[("grant_type", "client_credentials")], &[])
        .await;
    let body = assert_invalid_client(res, "token, nothing").await;
    assert_eq!(
        body["error_description"],
        "client authentication is required"
    );
    // Naming a client is not authenticating as it.
    let res = app
        .post_form(
            "/oauth/device_authorization",
            &[("client_id", &device.serial)],
            &[(
                "DPoP",
                &device.dpop("POST", "/oauth/device_authorization", now),
            )],
        )
        .await;
    assert_invalid_client(res, "device_authorization, client_id only").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", "x"),
                ("client_id", &device.serial),
            ],
            &[("DPoP", &device.dpop("POST", "/oauth/token", now))],
        )
        .await;
    assert_invalid_client(res, "device_code, client_id only").await;
}

async fn client_ids_outside_vschar_name_no_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret(SCOPE).await;
    let now = app.now();
    // NUL cannot even be compared on PostgreSQL: these must be refusals, never server errors.
    for odd in [
        "\u{0}",
        &format!("{id}\u{0}"),
        "\u{7f}",
        "ünïcödé",
        "a\nb",
        "tab\there",
    ] {
        let res = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", odd),
                    ("client_secret", &secret),
                ],
                &[],
            )
            .await;
        let body = assert_invalid_client(res, &format!("post {odd:?}")).await;
        assert_eq!(body["error_description"], "unknown or disabled client");
        let res = app
            .post_form(
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                &[("Authorization", &basic(odd, &secret))],
            )
            .await;
        assert_eq!(res.status(), 401, "Basic {odd:?}");
        let impostor = TestDevice {
            serial: odd.to_owned(),
            key: Signer::es256(),
            issuer: app.base.clone(),
        };
        let res = with_assertion(&app, &impostor.assertion(now)).await;
        assert_invalid_client(res, &format!("assertion {odd:?}")).await;
    }
}
