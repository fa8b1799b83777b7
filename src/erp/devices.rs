//! `PUT /api/erp/v1/devices/{serial}`: the ERP registers a manufactured device with its factory
//! key. The same body again changes nothing; another key is a conflict unless the ERP re-keys
//! the device explicitly, which replaces the key and revokes every token of the device.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{Conflict, ErpError, FieldError, Location};
use super::input::{self, Fields};
use crate::crypto::jose::PublicJwk;
use crate::events::{self, Action, Event, FeedEntry, FeedType, Subject};
use crate::ids::DeviceSerial;
use crate::store::{Tx, erp as stored, registry};

/// A checked request body.
#[derive(Debug, Clone)]
pub struct DeviceInput {
    pub model: String,
    pub key: PublicJwk,
    pub rekey: bool,
}

/// The members a body may have.
pub const FIELDS: &[&str] = &["model", "public_jwk", "rekey"];

/// The body of a PUT as the ERP sends it, for the API description: [`DeviceInput::parse`] reads
/// the members one by one, so that one answer names every problem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "model": "TX-9000",
    "public_jwk": {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }
})))]
pub struct DevicePut {
    #[schema(min_length = 1, max_length = 128)]
    pub model: String,
    pub public_jwk: Jwk,
    /// Replace a different registered key (revokes every token of the device).
    #[serde(default)]
    #[schema(default = false)]
    pub rekey: bool,
}

/// A public JWK: EC P-256 (`kty` EC, `crv` P-256, `x`, `y`) or Ed25519 (`kty` OKP, `crv`
/// Ed25519, `x`); private members are refused.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: JwkKeyType,
    pub crv: JwkCurve,
    pub x: String,
    pub y: Option<String>,
    pub kid: Option<String>,
    pub alg: Option<JwkAlgorithm>,
}

/// The key types a device key may have.
#[derive(Debug, Deserialize, ToSchema)]
pub enum JwkKeyType {
    #[serde(rename = "EC")]
    Ec,
    #[serde(rename = "OKP")]
    Okp,
}

/// The curves a device key may be on.
#[derive(Debug, Deserialize, ToSchema)]
pub enum JwkCurve {
    #[serde(rename = "P-256")]
    P256,
    Ed25519,
}

/// The signing algorithms a device key may name.
#[derive(Debug, Deserialize, ToSchema)]
pub enum JwkAlgorithm {
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl DeviceInput {
    /// Reads a body; every problem is reported.
    pub fn parse(serial: &str, body: &Value) -> Result<Self, ErpError> {
        let mut errors = Vec::new();
        if input::serial(serial).is_err() {
            errors.push(FieldError {
                location: Location::Path("serial"),
                detail: "must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-'".into(),
            });
        }
        let parsed = Fields::of(body, "", FIELDS, &mut errors).and_then(|f| {
            let model = f.text("model", input::model, &mut errors);
            let key = f.require("public_jwk", &mut errors).and_then(|jwk| {
                PublicJwk::parse(jwk)
                    .map_err(|e| {
                        errors.push(FieldError::body(f.pointer("public_jwk"), e.to_string()))
                    })
                    .ok()
            });
            let rekey = f.flag("rekey", &mut errors);
            Some((model?, key?, rekey))
        });
        match parsed {
            Some((model, key, rekey)) if errors.is_empty() => Ok(Self { model, key, rekey }),
            _ => Err(ErpError::Validation(errors)),
        }
    }
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChange {
    Created,
    Unchanged,
    Updated,
    Rekeyed,
}

/// The answer to a PUT.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceOutcome {
    #[schema(value_type = String)]
    pub serial: DeviceSerial,
    pub model: String,
    /// RFC 7638 thumbprint of the registered factory key.
    pub key_thumbprint: String,
    pub change: DeviceChange,
    /// Refresh-token families (one per pairing) revoked by a re-key; every access token of the
    /// device ends too.
    pub tokens_revoked: usize,
}

/// Registers, confirms, corrects or re-keys a device inside the caller's transaction. Every
/// refusal is decided before anything is written.
pub fn apply(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    serial: &DeviceSerial,
    input: &DeviceInput,
) -> Result<DeviceOutcome, ErpError> {
    let thumbprint = input.key.thumbprint();
    let outcome = |change, tokens_revoked| DeviceOutcome {
        serial: serial.to_owned(),
        model: input.model.clone(),
        key_thumbprint: thumbprint.clone(),
        change,
        tokens_revoked,
    };
    let Some(client) = registry::find_client(tx, serial.as_str())? else {
        crate::devices::insert(tx, now_ms, actor, serial, &input.model, &input.key)?;
        return Ok(outcome(DeviceChange::Created, 0));
    };
    let device = registry::find_device(tx, serial)?;
    let (registry::ClientKind::Device, Some(device)) = (client.kind, device) else {
        return Err(ErpError::Conflict(Conflict::NotADevice));
    };
    let registered = Registered {
        now_ms,
        actor,
        serial,
        device: &device,
        input,
    };
    let current = registered_thumbprint(&client);
    let same_key = current.as_deref() == Some(thumbprint.as_str());
    let same_model = device.model == input.model;
    if !same_key && !input.rekey {
        return Err(ErpError::Conflict(Conflict::KeyMismatch));
    }
    if !same_model {
        stored::set_device_model(tx, serial, &input.model)?;
    }
    if same_key {
        if same_model {
            return Ok(outcome(DeviceChange::Unchanged, 0));
        }
        registered.record_model_change(tx)?;
        return Ok(outcome(DeviceChange::Updated, 0));
    }
    let revoked = registered.rekey(tx, current)?;
    Ok(outcome(DeviceChange::Rekeyed, revoked))
}

/// The RFC 7638 thumbprint of the key the device is registered with.
fn registered_thumbprint(client: &registry::ClientRecord) -> Option<String> {
    client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|set| crate::crypto::jose::parse_jwk_set(&set).ok())
        .and_then(|keys| keys.first().map(PublicJwk::thumbprint))
}

/// A registered device and the request that changes it.
struct Registered<'a> {
    now_ms: i64,
    actor: &'a str,
    serial: &'a DeviceSerial,
    device: &'a registry::DeviceRecord,
    input: &'a DeviceInput,
}

impl Registered<'_> {
    /// Records a corrected model in the audit log and the feed.
    fn record_model_change(&self, tx: &mut Tx<'_>) -> Result<(), ErpError> {
        let (device, input) = (self.device, self.input);
        self.record(
            tx,
            Change {
                action: Action::DeviceUpdated,
                feed: FeedType::DeviceUpdated,
                detail: json!({ "from": device.model, "to": input.model }),
                data: json!({ "model": input.model }),
            },
        )
    }

    /// Replaces the device's key, revokes every token of the device, and records the re-key;
    /// answers how many refresh-token families were revoked.
    fn rekey(&self, tx: &mut Tx<'_>, current: Option<String>) -> Result<usize, ErpError> {
        let (serial, input) = (self.serial, self.input);
        let thumbprint = input.key.thumbprint();
        let jwks = json!({ "keys": [input.key.to_json()] }).to_string();
        stored::set_device_jwks(tx, serial, &jwks)?;
        let revoked = registry::revoke_device_tokens(tx, serial)?;
        self.record(
            tx,
            Change {
                action: Action::DeviceRekeyed,
                feed: FeedType::DeviceRekeyed,
                detail: json!({
                    "previous_thumbprint": current,
                    "key_thumbprint": thumbprint,
                    "model": input.model,
                    "refresh_token_families_revoked": revoked,
                }),
                data: json!({
                    "model": input.model,
                    "key_thumbprint": thumbprint,
                    "tokens_revoked": true,
                }),
            },
        )?;
        Ok(revoked)
    }

    /// Records `change` to the device in the audit log and the ERP feed, in the caller's
    /// transaction.
    fn record(&self, tx: &mut Tx<'_>, change: Change) -> Result<(), ErpError> {
        let (serial, tenant_id) = (self.serial, self.device.tenant_id);
        events::record(
            tx,
            self.now_ms,
            Event::new(
                change.action,
                self.actor,
                Subject::Device(serial.to_owned()),
            )
            .tenant(tenant_id)
            .detail(change.detail)
            .erp_entry(
                FeedEntry::device(change.feed, serial)
                    .with_tenant(tenant_id)
                    .with_data(change.data),
            ),
        )?;
        Ok(())
    }
}

/// A change to a registered device, as the audit log and the ERP feed record it.
struct Change {
    action: Action,
    feed: FeedType,
    /// The audit row's detail.
    detail: Value,
    /// The feed entry's data.
    data: Value,
}
