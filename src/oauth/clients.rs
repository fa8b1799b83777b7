//! The registry of service clients (the ERP, relying apps that introspect): how they
//! authenticate (a JWK Set for private_key_jwt, or a generated secret shown once) and which
//! scopes they may be granted.

use serde_json::{Value, json};

use super::client_auth::hash_secret;
use crate::crypto::jose::{JwkError, parse_jwk_set};
use crate::crypto::tokens;
use crate::events::{self, Action, Event, Subject};
use crate::ids::TenantId;
use crate::store::apps;
use crate::store::registry::{self, ClientKind, NewClient};
use crate::store::{Store, StoreError, Tx};

/// How a new service client will authenticate.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    /// private_key_jwt with these public keys.
    Jwks(Value),
    /// A generated secret (client_secret_basic / client_secret_post).
    Secret,
}

/// A created client; `secret` is shown once and stored only as a hash.
#[derive(Debug, Clone)]
pub struct CreatedClient {
    pub client_id: String,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the name must be 1–100 printable characters")]
    InvalidName,
    #[error("scopes must be space-separated words of A–Z, a–z, 0–9, ':', '_', '.' or '-'")]
    InvalidScope,
    #[error("the JWK Set is not acceptable: {0}")]
    InvalidKeys(#[from] JwkError),
    #[error("no client with id {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A client's display name: trimmed, 1–100 printable characters.
pub(super) fn checked_name(name: &str) -> Result<&str, ClientError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ClientError::InvalidName);
    }
    Ok(name)
}

/// A new client_id: the name's letters and digits, plus a random suffix.
pub(super) fn new_client_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' || c == '-' || c == '_' {
                Some('-')
            } else {
                None
            }
        })
        .take(32)
        .collect();
    format!(
        "{}-{}",
        if slug.is_empty() { "client" } else { &slug },
        &tokens::new_id()[..8]
    )
}

impl ClientCredential {
    /// What to store (the JWK Set's public keys, or nothing), and the secret to show once.
    pub(super) fn issue(self) -> Result<(Option<String>, Option<String>), ClientError> {
        Ok(match self {
            Self::Jwks(set) => {
                let keys = parse_jwk_set(&set)?;
                let published: Vec<Value> = keys.iter().map(|k| k.to_json()).collect();
                (Some(json!({ "keys": published }).to_string()), None)
            }
            Self::Secret => (None, Some(tokens::random_token())),
        })
    }
}

/// Registers a service client; its client_id is derived from the name plus a random suffix.
pub async fn create_service_client(
    store: &Store,
    now_ms: i64,
    actor: &str,
    name: &str,
    scope: &str,
    credential: ClientCredential,
) -> Result<CreatedClient, ClientError> {
    let name = checked_name(name)?;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scope_ok = !scopes.is_empty()
        && scopes.iter().all(|s| {
            s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":_.-".contains(&b))
        });
    if !scope_ok {
        return Err(ClientError::InvalidScope);
    }
    let client_id = new_client_id(name);
    let (jwks, secret) = credential.issue()?;
    let record = NewClient {
        client_id: client_id.clone(),
        kind: ClientKind::Service,
        name: name.to_owned(),
        jwks,
        secret_hash: secret.as_deref().map(hash_secret),
        scope: scopes.join(" "),
        created_at: now_ms,
    };
    let actor = actor.to_owned();
    store
        .write(move |tx| {
            registry::insert_client(tx, &record)?;
            let auth = if record.jwks.is_some() {
                "private_key_jwt"
            } else {
                "client_secret"
            };
            let detail = json!({ "name": record.name, "scope": record.scope, "auth": auth });
            let subject = Subject::Client(record.client_id.to_owned());
            let event = Event::new(Action::ClientRegistered, actor, subject).detail(detail);
            events::record(tx, now_ms, event)?;
            Ok::<_, StoreError>(())
        })
        .await?;
    Ok(CreatedClient { client_id, secret })
}

/// What kind of client is being disabled: a service client, or an app (of a company, or of all).
pub(super) enum Disabled {
    Service,
    App(Option<TenantId>),
}

/// Disables an active client in the caller's transaction and records it as `client.disabled`
/// (an app's under its company, so its owners read it).
pub(super) fn disable_in(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: String,
    client_id: &str,
    name: &str,
    disabled: Disabled,
) -> Result<(), StoreError> {
    registry::set_client_status(tx, client_id, registry::ActiveStatus::Disabled)?;
    let (kind, tenant) = match disabled {
        Disabled::Service => ("service", None),
        Disabled::App(tenant) => ("app", tenant),
    };
    let event = Event::new(
        Action::ClientDisabled,
        actor,
        Subject::Client(client_id.into()),
    )
    .tenant(tenant)
    .detail(json!({ "name": name, "kind": kind }));
    events::record(tx, now_ms, event)
}

/// Disables a service client or an app (a device is neither): it authenticates no more.
/// Audited; disabling a disabled client changes nothing and records nothing. Returns whether it
/// was active.
pub async fn disable_service_client(
    store: &Store,
    now_ms: i64,
    actor: &str,
    client_id: &str,
) -> Result<bool, ClientError> {
    let (actor, client_id) = (actor.to_owned(), client_id.to_owned());
    store
        .write(move |tx| {
            let found = registry::find_client(tx, &client_id)?;
            let Some(client) = found.filter(|c| c.kind != ClientKind::Device) else {
                return Ok(Err(ClientError::NotFound(client_id)));
            };
            if !client.active {
                return Ok(Ok(false));
            }
            let disabled = match client.kind {
                ClientKind::App => {
                    let tenant = apps::find_app(tx, &client_id)?.and_then(|a| a.tenant_id);
                    Disabled::App(tenant)
                }
                _ => Disabled::Service,
            };
            disable_in(tx, now_ms, actor, &client_id, &client.name, disabled)?;
            Ok::<_, StoreError>(Ok(true))
        })
        .await?
}
