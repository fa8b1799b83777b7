//! Weak public keys are refused wherever a key arrives: a device's factory key (the domain and
//! `pairgate device register`), a service client's JWK Set (`pairgate client create
//! --jwks-file`), and the `jwk` of a DPoP proof. An Ed25519 point of small order verifies forged
//! signatures (the identity: R = identity, S = 0 for every message; the other seven for one
//! message in 2, 4 or 8, found by varying the jti), so a key like that proves nothing. The
//! forgeries here are checked against aws-lc-rs itself before they are sent, so each test shows
//! a signature that would verify and the refusal that stops it.

use std::process::Output;

use aws_lc_rs::signature::{ED25519, ParsedPublicKey};
use pairgate::crypto::jose::{self, JwkError};
use pairgate::ids::DeviceSerial;
use serde_json::{Value, json};

use super::error_of;
use crate::backend_tests;
use crate::support::device::Signer;
use crate::support::{Backend, JWT_BEARER, TestApp};

backend_tests!(
    forged_proofs_with_small_order_keys_are_refused_at_the_token_endpoint,
    forged_proofs_with_small_order_keys_are_refused_at_device_authorization,
    a_device_keyed_with_the_identity_cannot_be_impersonated,
    the_cli_refuses_weak_device_and_client_keys,
);

/// The description of a refused proof key.
pub const BAD_JWK: &str = "the DPoP proof's jwk is not an acceptable public key";

/// `x` of the identity point: `AQAA…`.
pub fn identity() -> [u8; 32] {
    let mut one = [0u8; 32];
    one[0] = 1;
    one
}

pub fn ed25519_jwk(x: &[u8]) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": jose::b64(x) })
}

/// The eight points of small order (canonical encodings), from curve25519-dalek.
pub fn small_order_points() -> Vec<[u8; 32]> {
    curve25519_dalek::constants::EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect()
}

/// Weak Ed25519 keys as JWKs, with a name: the eight small-order points, and non-canonical
/// encodings of the identity (y = p + 1, and x = 0 with the sign bit set).
pub fn weak_jwks() -> Vec<(String, Value)> {
    let mut keys: Vec<(String, Value)> = small_order_points()
        .iter()
        .map(|x| (format!("small order {}", hex(x)), ed25519_jwk(x)))
        .collect();
    let mut p_plus_one = [0xffu8; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    let mut negative_zero = identity();
    negative_zero[31] = 0x80;
    for (name, x) in [
        ("identity as y = p + 1", p_plus_one),
        ("identity with x = -0", negative_zero),
    ] {
        keys.push((name.to_owned(), ed25519_jwk(&x)));
    }
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// R = the identity, S = 0.
fn forged_signature() -> Vec<u8> {
    let mut signature = vec![0u8; 64];
    signature[0] = 1;
    signature
}

/// A JWS "signed" by the small-order key `x` without any private key: the claims get a jti
/// varied until aws-lc-rs verifies the forged signature over them.
pub fn forge(x: &[u8], header: Value, claims: Value) -> String {
    let raw = ParsedPublicKey::new(&ED25519, x).unwrap();
    let header = jose::b64(header.to_string());
    for attempt in 0..4096 {
        let mut claims = claims.clone();
        claims["jti"] = json!(format!(
            "forged-{attempt}-{}",
            hex(&rand::random::<[u8; 4]>())
        ));
        let input = format!("{header}.{}", jose::b64(claims.to_string()));
        if raw
            .verify_sig(input.as_bytes(), &forged_signature())
            .is_ok()
        {
            return format!("{input}.{}", jose::b64(forged_signature()));
        }
    }
    panic!("no forgery found for {}", hex(x));
}

/// A forged DPoP proof for `POST path` whose `jwk` is the small-order key `x`.
pub fn forged_proof(app: &TestApp, x: &[u8], method: &str, path: &str, extra: Value) -> String {
    let mut claims = json!({ "htm": method, "htu": app.url(path), "iat": app.now() });
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        c.extend(e);
    }
    forge(
        x,
        json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed25519_jwk(x) }),
        claims,
    )
}

async fn assert_bad_jwk(res: reqwest::Response, case: &str) {
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
    assert_eq!(body["error_description"], BAD_JWK, "{case}: {body}");
}

/// Without the check, each of these proofs gets a client_credentials token bound to a key
/// whose "proofs" anybody can make: the DPoP binding would be worth nothing.
async fn forged_proofs_with_small_order_keys_are_refused_at_the_token_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("erp").await;
    let basic = super::client_auth::basic(&id, &secret);
    for x in small_order_points() {
        let proof = forged_proof(&app, &x, "POST", "/oauth/token", json!({}));
        let res = app
            .post_form(
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                &[("Authorization", &basic), ("DPoP", &proof)],
            )
            .await;
        assert_bad_jwk(res, &hex(&x)).await;
    }
    // The same request with a real key's proof is fine.
    let holder = crate::support::device::TestDevice {
        serial: id.clone(),
        key: Signer::ed25519(),
        issuer: app.base.clone(),
    };
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[
                ("Authorization", &basic),
                ("DPoP", &holder.dpop("POST", "/oauth/token", app.now())),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn forged_proofs_with_small_order_keys_are_refused_at_device_authorization(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-WEAK-1").await;
    for x in small_order_points() {
        let proof = forged_proof(&app, &x, "POST", "/oauth/device_authorization", json!({}));
        let assertion = device.assertion(app.now());
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
        assert_bad_jwk(res, &hex(&x)).await;
    }
}

/// The attack the check stops: a device registered with the identity as its factory key can be
/// impersonated by anyone, with a forged client assertion and a forged proof.
async fn a_device_keyed_with_the_identity_cannot_be_impersonated(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (name, jwk) in weak_jwks() {
        let refused = pairgate::devices::register(
            &app.ctx.store,
            app.now() * 1000,
            "test",
            &DeviceSerial::from("SN-WEAK-2"),
            "TX-9000",
            &jwk,
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(pairgate::devices::RegisterError::InvalidKey(
                    JwkError::WeakKey
                ))
            ),
            "{name}: {refused:?}"
        );
    }
    // A key stored before keys were checked (or behind pairgate's back) authenticates nobody.
    let device = app.device("SN-WEAK-3").await;
    let jwks = json!({ "keys": [ed25519_jwk(&identity())] }).to_string();
    app.raw_sql(&format!(
        "UPDATE clients SET jwks = '{jwks}' WHERE client_id = '{}'",
        device.serial
    ))
    .await;
    let now = app.now();
    let assertion = forge(
        &identity(),
        json!({ "typ": "JWT", "alg": "EdDSA" }),
        json!({
            "iss": device.serial, "sub": device.serial, "aud": app.base,
            "iat": now, "exp": now + 60,
        }),
    );
    let proof = forged_proof(
        &app,
        &identity(),
        "POST",
        "/oauth/device_authorization",
        json!({}),
    );
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
    let body = error_of(res, 400).await;
    assert!(
        ["invalid_client", "invalid_dpop_proof"].contains(&body["error"].as_str().unwrap()),
        "{body}"
    );
    // And with a real proof key, the forged assertion alone is refused too.
    let proof = device.dpop("POST", "/oauth/device_authorization", app.now());
    let assertion = forge(
        &identity(),
        json!({ "typ": "JWT", "alg": "EdDSA" }),
        json!({
            "iss": device.serial, "sub": device.serial, "aud": app.base,
            "iat": now, "exp": now + 60,
        }),
    );
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
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(
        body["error_description"],
        "this client's registered keys are unusable"
    );
}

/// Runs the `pairgate` binary against the test app's database.
fn pairgate(
    app: &TestApp,
    dir: &std::path::Path,
    args: &[&str],
    file: &std::path::Path,
) -> (Output, String) {
    let out = app.cli(dir).args(args).arg(file).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

async fn the_cli_refuses_weak_device_and_client_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.json");
    let weak = "the key is a weak point: small order or not canonically encoded";
    for (n, (name, jwk)) in weak_jwks().into_iter().enumerate() {
        std::fs::write(&file, jwk.to_string()).unwrap();
        let serial = format!("SN-WEAK-CLI-{n}");
        let (out, text) = pairgate(
            &app,
            dir.path(),
            &[
                "device",
                "register",
                "--serial",
                &serial,
                "--model",
                "TX-9000",
                "--jwk-file",
            ],
            &file,
        );
        assert!(!out.status.success(), "{name}: {text}");
        assert!(text.contains(weak), "{name}: {text}");

        // A JWK Set with one good key and one weak key is refused as a whole.
        let set = json!({ "keys": [Signer::es256().jwk(), jwk] });
        std::fs::write(&file, set.to_string()).unwrap();
        let (out, text) = pairgate(
            &app,
            dir.path(),
            &[
                "client",
                "create",
                "--name",
                "Weak ERP",
                "--scope",
                "erp",
                "--jwks-file",
            ],
            &file,
        );
        assert!(!out.status.success(), "{name}: {text}");
        assert!(text.contains(weak), "{name}: {text}");
    }
    let registered = app.query_i64("SELECT COUNT(*) AS n FROM clients").await;
    assert_eq!(registered, 0, "nothing was registered");
    // A real key goes through the same commands.
    std::fs::write(&file, Signer::ed25519().jwk().to_string()).unwrap();
    let (out, text) = pairgate(
        &app,
        dir.path(),
        &[
            "device",
            "register",
            "--serial",
            "SN-OK",
            "--model",
            "TX-9000",
            "--jwk-file",
        ],
        &file,
    );
    assert!(out.status.success(), "{text}");
}
