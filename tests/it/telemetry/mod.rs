//! Telemetry: the upload endpoint as a DPoP resource server (RFC 9449 §7, RFC 9068 §4, RFC 6750
//! §3), idempotent batches, revocation, the group-commit writer, reads through device access,
//! retention, the reusable verifier over JWKS, and the device simulator end to end.

mod openapi;
mod partitions;
mod reads;
mod refusals;
mod revocation;
mod simulator;
mod upload;
mod verifier;

use pairgate::accounts::{LoginOutcome, NewUser, Role};
use pairgate::crypto::jose;
use pairgate::ids::{DeviceSerial, TenantId, UserId};
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::device::TestDevice;

pub const UPLOAD: &str = "/api/v1/telemetry";

/// A device paired into a tenant, with its tokens.
pub struct Paired {
    pub device: TestDevice,
    pub tenant: TenantId,
    pub access_token: String,
    pub refresh_token: String,
}

/// Registers `serial` and pairs it into `tenant`.
pub async fn pair_into(app: &TestApp, serial: &str, tenant: TenantId) -> Paired {
    let device = app.device(serial).await;
    let tokens = app.pair(&device, tenant).await;
    Paired {
        device,
        tenant,
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// A new tenant with `serial` paired into it.
pub async fn paired(app: &TestApp, serial: &str) -> Paired {
    let tenant = app.tenant("Acme Water").await;
    pair_into(app, serial, tenant).await
}

/// A batch body: one reading per (id, ts in Unix ms), each with `{"t": n}`.
pub fn batch(readings: &[(&str, i64)]) -> Value {
    json!({
        "readings": readings
            .iter()
            .enumerate()
            .map(|(n, (id, ts))| json!({ "id": id, "ts": ts, "metrics": { "t": 20.0 + n as f64 } }))
            .collect::<Vec<_>>(),
    })
}

/// `n` readings with ids `{prefix}-0…` at the app's current time.
pub fn readings(app: &TestApp, prefix: &str, n: usize) -> Value {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let now = app.now() * 1000;
    batch(&ids.iter().map(|id| (id.as_str(), now)).collect::<Vec<_>>())
}

/// An upload with a correct proof for `token` (plus `claims` overrides on the proof).
pub async fn upload_with(
    app: &TestApp,
    device: &TestDevice,
    token: &str,
    body: &Value,
    claims: Value,
) -> reqwest::Response {
    let mut proof_claims = json!({ "ath": jose::sha256_b64(token) });
    if let (Some(p), Value::Object(o)) = (proof_claims.as_object_mut(), claims) {
        p.extend(o);
    }
    let proof = device.dpop_with("POST", UPLOAD, app.now(), json!({}), proof_claims);
    app.client
        .post(app.url(UPLOAD))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// An upload by a paired device with its own token and a correct proof.
pub async fn upload(app: &TestApp, p: &Paired, body: &Value) -> reqwest::Response {
    upload_with(app, &p.device, &p.access_token, body, json!({})).await
}

/// The JSON of a successful upload: (accepted, duplicates).
pub async fn accepted(res: reqwest::Response) -> (u64, u64) {
    assert_eq!(res.status(), 200, "upload refused: {:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    (
        body["accepted"].as_u64().unwrap(),
        body["duplicates"].as_u64().unwrap(),
    )
}

/// Status, `WWW-Authenticate` and body of a refused upload.
pub async fn refusal(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, res.json().await.unwrap())
}

/// How many readings of `serial` are stored.
pub async fn stored(app: &TestApp, serial: &str) -> i64 {
    let serial = serial.to_owned();
    app.ctx
        .store
        .read(move |tx| {
            pairgate::store::telemetry::count_for_device(tx, &DeviceSerial::from(&serial))
        })
        .await
        .unwrap()
}

/// Creates a portal user and signs them in; returns (user id, session cookie value).
pub async fn sign_in(
    app: &TestApp,
    tenant: Option<TenantId>,
    role: Role,
    email: &str,
) -> (UserId, String) {
    let password = "correct horse battery staple";
    let (id, _) = app
        .ctx
        .accounts
        .create_user(
            "test",
            NewUser {
                tenant_id: tenant,
                email: email.to_owned(),
                name: "Test Person".to_owned(),
                role,
                password: password.to_owned(),
                totp: false,
            },
        )
        .await
        .unwrap();
    match app
        .ctx
        .accounts
        .sign_in(email, password, None, None)
        .await
        .unwrap()
    {
        LoginOutcome::SignedIn(cookie) => (id, cookie),
        other => panic!("expected a full session, got {other:?}"),
    }
}

/// `GET /api/v1/devices/{serial}/telemetry?{query}` with a session cookie (or none).
pub async fn read(
    app: &TestApp,
    cookie: Option<&str>,
    serial: &str,
    query: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url(&format!("/api/v1/devices/{serial}/telemetry?{query}")));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("pairgate_session={c}"));
    }
    req.send().await.unwrap()
}

/// Moves a device to another tenant straight in the store (what a staff decision does), ending
/// its current pairing; its token generation stays as it was.
pub fn move_device(
    tx: &mut pairgate::store::Tx<'_>,
    serial: &str,
    tenant_id: TenantId,
    at: i64,
) -> Result<(), pairgate::store::StoreError> {
    use pairgate::store::pairings;
    pairings::end_current(tx, &DeviceSerial::from(serial), "moved", at)?;
    pairings::insert(
        tx,
        &pairings::NewPairing {
            serial: serial.into(),
            tenant_id,
            status: pairings::PairingStatus::Active,
            basis: "operator",
            sale_id: None,
            flow_id: None,
            approved_by: "staff:test".into(),
            created_at: at,
            confirmed_at: Some(at),
            granted_by: None,
        },
    )?;
    Ok(())
}
