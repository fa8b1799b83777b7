//! `PUT /api/erp/v1/devices/{serial}`: idempotent registration, conflicts on another key, explicit
//! re-keying that revokes the device's tokens, and field-level validation.

use serde_json::json;

use super::{ErpClient, expect_json, expect_problem};
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, TestApp};

backend_tests!(
    registration_is_idempotent,
    another_key_conflicts_unless_the_erp_rekeys,
    bodies_are_validated_field_by_field,
    weak_keys_are_refused_field_by_field,
);

async fn registration_is_idempotent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let key = Signer::ed25519();
    let body = json!({ "model": "TX-9000", "public_jwk": key.jwk() });
    let path = "/api/erp/v1/devices/SN-DEV-1";

    let created = erp.put_ok(path, &body, 201).await;
    assert_eq!(created["change"], "created");
    assert_eq!(created["key_thumbprint"], key.thumbprint());
    let again = erp.put_ok(path, &body, 200).await;
    assert_eq!(again["change"], "unchanged");
    assert_eq!(erp.all_events().await.len(), 1, "a repeat records nothing");

    // The registered key authenticates the device at once: it can start pairing.
    let device = TestDevice {
        serial: "SN-DEV-1".into(),
        key,
        issuer: app.base.clone(),
    };
    app.start_pairing(&device).await;

    // A model correction is an update.
    let fixed = erp
        .put_ok(
            path,
            &json!({ "model": "TX-9001", "public_jwk": device.key.jwk() }),
            200,
        )
        .await;
    assert_eq!(fixed["change"], "updated");
    let types: Vec<String> = erp
        .all_events()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["device.registered", "pairing.requested", "device.updated"]
    );
}

async fn another_key_conflicts_unless_the_erp_rekeys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let first = erp.device("SN-DEV-2").await;
    let device = TestDevice {
        serial: "SN-DEV-2".into(),
        key: first,
        issuer: app.base.clone(),
    };
    let tenant = app.tenant("Acme").await;
    let tokens = app.pair(&device, tenant).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(
        app.ctx
            .oauth
            .active_access_token(access)
            .await
            .unwrap()
            .is_some()
    );

    let path = "/api/erp/v1/devices/SN-DEV-2";
    let new_key = Signer::es256();
    let body = json!({ "model": "TX-9000", "public_jwk": new_key.jwk() });
    let res = erp.put(path, &body).await;
    let problem = expect_problem(res, 409, "key-mismatch").await;
    assert!(problem["detail"].as_str().unwrap().contains("rekey"));
    // The refusal changed nothing: the old tokens still work.
    assert!(
        app.ctx
            .oauth
            .active_access_token(access)
            .await
            .unwrap()
            .is_some()
    );

    let mut rekey = body.clone();
    rekey["rekey"] = json!(true);
    let done = erp.put_ok(path, &rekey, 200).await;
    assert_eq!(done["change"], "rekeyed");
    assert_eq!(
        done["tokens_revoked"], 1,
        "the pairing's refresh-token family"
    );
    assert_eq!(done["key_thumbprint"], new_key.thumbprint());
    assert!(
        app.ctx
            .oauth
            .active_access_token(access)
            .await
            .unwrap()
            .is_none(),
        "re-keying revokes every token of the device"
    );
    // Re-keying again with the same key is a no-op, and the new key is the only one that works.
    assert_eq!(erp.put_ok(path, &rekey, 200).await["change"], "unchanged");
    let res = app.device_authorization(&device).await;
    assert_eq!(res.status(), 400, "the old key no longer authenticates");
    let renewed = TestDevice {
        serial: "SN-DEV-2".into(),
        key: new_key,
        issuer: app.base.clone(),
    };
    app.start_pairing(&renewed).await;

    // A serial that belongs to a service client is not a device.
    let res = erp
        .put(&format!("/api/erp/v1/devices/{}", erp.client_id), &body)
        .await;
    expect_problem(res, 409, "not-a-device").await;
}

async fn bodies_are_validated_field_by_field(backend: Backend) {
    // A small body limit, so an oversized body still fits the socket buffers (the answer comes
    // before the server reads it all).
    let app = TestApp::builder(backend)
        .config("[server]\nmax_json_bytes = 4096")
        .start()
        .await;
    let erp = ErpClient::new(&app).await;
    let mut private = Signer::es256().jwk();
    private["d"] = json!("AAAA");
    let res = erp
        .put(
            "/api/erp/v1/devices/bad%20serial",
            &json!({ "model": "", "public_jwk": private, "colour": "red", "rekey": "yes" }),
        )
        .await;
    let body = expect_problem(res, 422, "validation").await;
    insta::assert_json_snapshot!("erp_device_validation_problem", body);

    // Not JSON; not a JSON content type; too large.
    let res = app
        .client
        .put(app.url("/api/erp/v1/devices/SN-1"))
        .header("Authorization", format!("Bearer {}", erp.token))
        .header("Content-Type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, 400, "malformed-json").await;
    let res = app
        .client
        .put(app.url("/api/erp/v1/devices/SN-1"))
        .header("Authorization", format!("Bearer {}", erp.token))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(res, 415, "unsupported-media-type").await;
    let huge = json!({ "model": "x".repeat(8 * 1024) });
    expect_problem(
        erp.put("/api/erp/v1/devices/SN-1", &huge).await,
        413,
        "payload-too-large",
    )
    .await;

    // Wrong method, unknown path: problems too.
    let res = erp.get("/api/erp/v1/devices/SN-1").await;
    assert_eq!(res.headers()["allow"], "PUT");
    expect_problem(res, 405, "method-not-allowed").await;
    expect_problem(erp.get("/api/erp/v1/nothing").await, 404, "not-found").await;
    assert!(erp.all_events().await.is_empty());
    expect_json(erp.get("/api/erp/v1/events").await, 200).await;
}

/// Ed25519 points of small order (and non-canonical encodings) are no factory keys: 422 with the
/// reason at `#/public_jwk`, for a new device and for a re-key alike.
async fn weak_keys_are_refused_field_by_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let good = erp.device("SN-DEV-W").await;
    for (name, jwk) in crate::oauth::weak_keys::weak_jwks() {
        for (path, rekey) in [
            ("/api/erp/v1/devices/SN-DEV-NEW", false),
            ("/api/erp/v1/devices/SN-DEV-W", true),
        ] {
            let body = json!({ "model": "TX-9000", "public_jwk": jwk, "rekey": rekey });
            let problem = expect_problem(erp.put(path, &body).await, 422, "validation").await;
            assert_eq!(
                problem["errors"],
                json!([{
                    "pointer": "#/public_jwk",
                    "detail": "the key is a weak point: small order or not canonically encoded",
                }]),
                "{name} at {path}"
            );
        }
    }
    // P-256: x + p names the point (5, y) with a coordinate out of range.
    let out_of_range = json!({
        "kty": "EC", "crv": "P-256",
        "x": "_____wAAAAEAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAQ",
        "y": "RZJDuapYGAb-kTvOmYF63hHKUDxk2aPFM0FcCDJI-8w",
    });
    let body = json!({ "model": "TX-9000", "public_jwk": out_of_range });
    let problem = expect_problem(
        erp.put("/api/erp/v1/devices/SN-DEV-NEW", &body).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["detail"],
        "the JWK member x is missing or malformed"
    );

    // Nothing changed: the device keeps its key, and no other device exists.
    let device = TestDevice {
        serial: "SN-DEV-W".into(),
        key: good,
        issuer: app.base.clone(),
    };
    app.start_pairing(&device).await;
    let types: Vec<String> = erp
        .all_events()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["device.registered", "pairing.requested"]);
}
