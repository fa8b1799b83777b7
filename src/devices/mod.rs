//! The device registry: which devices exist, their model and factory public key. A device's OAuth
//! client_id is its serial number, and its factory key is the only key that authenticates it.

use serde_json::{Value, json};

use crate::crypto::jose::{JwkError, PublicJwk};
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::DeviceSerial;
use crate::oauth::tokens::DEVICE_SCOPE;
use crate::store::registry::{self, ClientKind, NewClient};
use crate::store::{Store, StoreError, StoreFailure, Tx};

/// Why a device could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the serial number must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-'")]
    InvalidSerial,
    #[error("the model must be 1–128 printable characters")]
    InvalidModel,
    #[error("the factory key is not acceptable: {0}")]
    InvalidKey(#[from] JwkError),
    #[error("a client or device with this serial number already exists")]
    AlreadyRegistered,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::AlreadyRegistered,
            other => Self::Store(other),
        }
    }
}

impl StoreFailure for RegisterError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Serial numbers become client_ids, URL path segments and log fields: keep them plain.
pub fn valid_serial(serial: &str) -> bool {
    (1..=64).contains(&serial.len())
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Models are shown to people deciding on a pairing: printable, bounded.
pub fn valid_model(model: &str) -> bool {
    (1..=128).contains(&model.chars().count()) && !model.chars().any(char::is_control)
}

/// Checks a registration before anything is written; returns the parsed factory key.
pub fn validate(
    serial: &DeviceSerial,
    model: &str,
    factory_key: &Value,
) -> Result<PublicJwk, RegisterError> {
    if !valid_serial(serial.as_str()) {
        return Err(RegisterError::InvalidSerial);
    }
    if !valid_model(model) {
        return Err(RegisterError::InvalidModel);
    }
    Ok(PublicJwk::parse(factory_key)?)
}

/// Registers a manufactured device with its factory public key (a JWK: EC P-256 or Ed25519).
pub async fn register(
    store: &Store,
    now_ms: i64,
    actor: &str,
    serial: &DeviceSerial,
    model: &str,
    factory_key: &Value,
) -> Result<PublicJwk, RegisterError> {
    let key = validate(serial, model, factory_key)?;
    let (serial, model, actor) = (serial.to_owned(), model.to_owned(), actor.to_owned());
    let stored = key.clone();
    store
        .write(move |tx| -> Result<(), RegisterError> {
            insert(tx, now_ms, &actor, &serial, &model, &stored)?;
            Ok(())
        })
        .await?;
    Ok(key)
}

/// Inserts a validated device (its client, its row, the audit event and the ERP event) inside
/// the caller's transaction; `Conflict` when the serial number is taken.
pub fn insert(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    serial: &DeviceSerial,
    model: &str,
    key: &PublicJwk,
) -> Result<(), StoreError> {
    let jwks = json!({ "keys": [key.to_json()] }).to_string();
    registry::insert_client(
        tx,
        &NewClient {
            client_id: serial.to_string(),
            kind: ClientKind::Device,
            name: model.to_owned(),
            jwks: Some(jwks),
            secret_hash: None,
            scope: DEVICE_SCOPE.to_owned(),
            created_at: now_ms,
        },
    )?;
    registry::insert_device(tx, serial, model, now_ms)?;
    let thumbprint = key.thumbprint();
    events::record(
        tx,
        now_ms,
        Event::new(
            Action::DeviceRegistered,
            actor,
            Subject::Device(serial.to_owned()),
        )
        .detail(json!({ "model": model, "key_thumbprint": thumbprint }))
        .erp(FeedType::DeviceRegistered),
    )?;
    Ok(())
}
