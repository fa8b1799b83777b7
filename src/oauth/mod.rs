//! The OAuth 2.0 authorization server: device authorization grant (RFC 8628), refresh and client
//! credentials grants (RFC 6749), private_key_jwt (RFC 7523), DPoP (RFC 9449), JWT access tokens
//! (RFC 9068), metadata (RFC 8414), introspection (RFC 7662) and revocation (RFC 7009); and
//! OpenID Connect for people: the code flow with PKCE (RFC 7636), ID tokens and UserInfo.
//!
//! Knows neither actix nor diesel: the HTTP layer hands in plain request data, and the database
//! work happens through `crate::store` operations inside `Store::write` transactions.

pub mod apps;
pub mod authorize;
pub mod client_auth;
mod client_cache;
pub mod clients;
mod device_authorization;
pub mod device_flow;
pub mod dpop;
mod error;
mod grants;
pub mod id_token;
mod introspection;
pub mod keyring;
pub mod logout;
mod metadata;
mod minting;
/// Added for the ERP API: checking pairgate's own tokens on pairgate's APIs.
pub mod resource;
mod revocation;
pub mod rotation;
mod token;
pub mod tokens;
pub mod user_code;

use std::collections::HashMap;
use std::sync::Arc;

pub use client_auth::ClientCredentials;
pub use device_authorization::DeviceAuthorization;
pub use error::OAuthError;
pub use minting::TokenResponse;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::jose;
use crate::crypto::master_key::MasterKey;
use crate::events::{self, Action, Event, Subject};
use crate::store::registry::ClientRecord;
use crate::store::{Store, StoreError};
use crate::verifier::dpop::{DpopProof, DpopVerifier};
use client_auth::{AssertionPolicy, AuthenticatedClient};
use keyring::{KeyRing, KeyRingError};
use rotation::RefreshTokens;

/// Paths of the endpoints, relative to the public URL.
pub mod paths {
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    pub const TOKEN: &str = "/oauth/token";
    pub const JWKS: &str = "/oauth/jwks";
    pub const INTROSPECT: &str = "/oauth/introspect";
    pub const REVOKE: &str = "/oauth/revoke";
    pub const METADATA: &str = "/.well-known/oauth-authorization-server";
    pub const AUTHORIZE: &str = "/oauth/authorize";
    pub const USERINFO: &str = "/oauth/userinfo";
    pub const LOGOUT: &str = "/oauth/logout";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const VERIFICATION: &str = "/device";
}

/// Form parameters of one request (the HTTP layer has already refused repeated ones).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(map: HashMap<String, String>) -> Self {
        Self(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present and non-empty.
    pub fn require(&self, name: &str, missing: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(OAuthError::InvalidRequest(missing))
    }
}

/// One OAuth request as the domain sees it.
#[derive(Debug, Default, Clone)]
pub struct OAuthRequest {
    pub params: Params,
    pub credentials: ClientCredentials,
    /// Every `DPoP` header value.
    pub dpop: Vec<String>,
    pub client_ip: Option<String>,
}

/// Why the authorization server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    KeyRing(#[from] KeyRingError),
}

/// The authorization server.
pub struct OAuth {
    store: Store,
    clock: SharedClock,
    settings: Arc<Settings>,
    keys: Arc<KeyRing>,
    dpop: DpopVerifier,
    assertion_policy: AssertionPolicy,
    clients: client_cache::ClientCache,
    refresh_tokens: Arc<RefreshTokens>,
    issuer: String,
    audience: String,
}

impl OAuth {
    /// Loads the key ring (creating a first signing key if there is none).
    pub async fn open(
        store: Store,
        clock: SharedClock,
        settings: Arc<Settings>,
        master: &MasterKey,
    ) -> Result<Self, StartError> {
        let o = &settings.oauth;
        let now_ms = clock.now().timestamp_millis();
        let keys = KeyRing::open(
            store.clone(),
            master,
            settings.keys.signing_alg,
            (i64::from(o.access_token_lifetime_secs.get()) + i64::from(o.clock_skew_secs)) * 1000,
            now_ms,
        )
        .await?;
        let issuer = settings.server.public_url.as_str().to_owned();
        let audience = if o.access_token_audience.is_empty() {
            format!("{issuer}/api")
        } else {
            o.access_token_audience.clone()
        };
        let keys = Arc::new(keys);
        keyring::keep_fresh(
            &keys,
            std::time::Duration::from_secs(u64::from(settings.keys.ring_reload_secs.get())),
            settings
                .keys
                .listen_for_rotations
                .then(|| store.signing_key_rotations())
                .flatten(),
        );
        Ok(Self {
            dpop: DpopVerifier::new(dpop::policy(o), master.derive("dpop-nonce")),
            assertion_policy: AssertionPolicy {
                audiences: vec![issuer.clone(), format!("{issuer}{}", paths::TOKEN)],
                max_lifetime_ms: i64::from(o.client_assertion_max_lifetime_secs.get()) * 1000,
                skew_ms: i64::from(o.clock_skew_secs) * 1000,
            },
            clients: client_cache::ClientCache::default(),
            refresh_tokens: Arc::new(RefreshTokens::new(master.derive("refresh-token"))),
            store,
            clock,
            keys,
            settings,
            issuer,
            audience,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of access tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The key ring, shared (the telemetry resource server verifies tokens against it).
    pub fn key_ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.keys)
    }

    /// The settings the server runs with (housekeeping reads its retention periods here).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The public URL of one of pairgate's paths, from configuration (never from request
    /// headers).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The published JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks(self.now_ms())
    }

    /// Rotates the signing key (publish-before-use); returns the new kid.
    pub async fn rotate_signing_key(&self, actor: &str) -> Result<String, KeyRingError> {
        let now = self.now_ms();
        let kid = self
            .keys
            .rotate(
                self.settings.keys.signing_alg,
                now,
                i64::from(self.settings.keys.publish_before_use_secs) * 1000,
            )
            .await?;
        let event = Event::new(Action::SigningKeyRotated, actor, Subject::Key(kid.clone()))
            .detail(serde_json::json!({ "alg": format!("{:?}", self.settings.keys.signing_alg) }));
        self.store
            .write(move |tx| events::record(tx, now, event))
            .await?;
        Ok(kid)
    }

    /// Authenticates the client of a request (no database writes; the assertion's jti is for the
    /// caller's transaction).
    async fn authenticate(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        self.authenticate_claimed(credentials.claimed()?).await
    }

    async fn authenticate_claimed(
        &self,
        claimed: client_auth::Claimed,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client = self.load_client(claimed.client_id().to_owned()).await?;
        client_auth::verify(claimed, client, &self.assertion_policy, self.now_ms())
    }

    /// [`Self::authenticate`] for endpoints whose write transaction starts with
    /// [`remember_jtis`]: a private_key_jwt client may come from the client cache, because that
    /// transaction confirms the client before anything is issued (see `client_cache.rs`).
    async fn authenticate_cached(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let claimed = credentials.claimed()?;
        let client_auth::Claimed::Assertion { client_id, jws } = claimed else {
            return self.authenticate_claimed(claimed).await;
        };
        let now = self.now_ms();
        let policy = &self.assertion_policy;
        if let Some(cached) = self.clients.get(&client_id, now) {
            let record = cached.record.clone();
            if let Ok(mut client) =
                client_auth::verify_assertion(record, &cached.keys, &client_id, &jws, policy, now)
            {
                client.keys_from_cache = true;
                return Ok(client);
            }
            // Perhaps the keys changed: decide on what the database says now.
            self.clients.forget(&client_id);
        }
        let stored = self.load_client(client_id.clone()).await?;
        let (authenticated, keys) =
            client_auth::authenticate_assertion(stored, &client_id, &jws, policy, now)?;
        self.clients.put(authenticated.client.clone(), keys, now);
        Ok(authenticated)
    }

    async fn load_client(&self, client_id: String) -> Result<Option<ClientRecord>, OAuthError> {
        Ok(self
            .store
            .read(move |tx| crate::store::registry::find_client(tx, &client_id))
            .await?)
    }

    /// After a refusal for `invalid_client`, the client is read afresh next time.
    fn forget_refused_client(&self, req: &OAuthRequest, err: &OAuthError) {
        if matches!(err, OAuthError::InvalidClient { .. })
            && let Some(id) = claimed_client_id(&req.credentials)
        {
            self.clients.forget(&id);
        }
    }

    /// Records a refused request (best effort: a failure here is logged, and never hides the
    /// refusal itself). `authenticated` is the client whose credentials held before the refusal,
    /// if any: such a client gets an audit row. A request whose client never authenticated only
    /// counts in `store::refusals`, per address, claimed client and hour: anyone can send those
    /// as fast as they like, and the hash-chained audit log must not grow with them.
    async fn record_refusal(
        &self,
        endpoint: &'static str,
        req: &OAuthRequest,
        authenticated: Option<&str>,
        err: &OAuthError,
    ) {
        if matches!(
            err,
            OAuthError::AuthorizationPending | OAuthError::Store(_) | OAuthError::UseDpopNonce
        ) {
            return;
        }
        let now = self.now_ms();
        // Whatever verified before, invalid_client means the credentials did not hold in the
        // end (a replayed assertion, a client disabled meanwhile).
        let authenticated =
            authenticated.filter(|_| !matches!(err, OAuthError::InvalidClient { .. }));
        let ip = req
            .client_ip
            .as_deref()
            .map(|ip| capped(ip, MAX_ADDRESS_BYTES));
        let written = match authenticated {
            Some(client_id) => {
                let event = Event::new(
                    Action::OAuthRefused,
                    format!("client:{client_id}"),
                    Subject::Endpoint(endpoint.to_owned()),
                )
                .detail(serde_json::json!({
                    "error": err.code(),
                    "reason": err.description(),
                    "ip": ip,
                }));
                self.store
                    .write(move |tx| events::record(tx, now, event))
                    .await
            }
            None => {
                let actor = claimed_client_id(&req.credentials)
                    .map(|c| format!("client:{c}"))
                    .unwrap_or_else(|| "anonymous".to_owned());
                let reason = match err.description() {
                    Some(d) => format!("{endpoint} {}: {d}", err.code()),
                    None => format!("{endpoint} {}", err.code()),
                };
                let ip = ip.unwrap_or_default();
                self.store
                    .write(move |tx| {
                        let refusal = crate::store::refusals::Refusal {
                            window_start: now - now.rem_euclid(REFUSAL_WINDOW_MS),
                            ip: &ip,
                            actor: &actor,
                            at: now,
                            reason: &reason,
                        };
                        crate::store::refusals::count(tx, &refusal, REFUSAL_ACTORS_PER_ADDRESS)
                    })
                    .await
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record a refused OAuth request");
        }
    }
}

/// Refusals of clients that never authenticated are counted per window of this length.
const REFUSAL_WINDOW_MS: i64 = 3_600_000;
/// Distinct claimed clients counted apart per address and window; further ones count together.
const REFUSAL_ACTORS_PER_ADDRESS: i64 = 16;
/// The longest claimed client id kept, in bytes.
const MAX_CLAIMED_ID_BYTES: usize = 128;
/// The longest client address kept, in bytes (the HTTP layer hands in parsed addresses, which
/// are shorter; this only bounds what another caller might pass).
const MAX_ADDRESS_BYTES: usize = 64;

/// `text` without control characters, cut to at most `max` bytes on a character boundary: what a
/// client chose, made fit to store.
fn capped(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// The client a request names, for logs and audit, before anything is verified.
fn claimed_client_id(c: &ClientCredentials) -> Option<String> {
    let raw = c
        .basic
        .as_ref()
        .map(|(id, _)| id.clone())
        .or_else(|| c.client_id.clone())
        .or_else(|| {
            c.assertion
                .as_deref()
                .and_then(|a| jose::CompactJws::parse(a).ok())
                .and_then(|j| j.claim_str("sub").map(str::to_owned))
        })?;
    // Whatever a client sent ends up in the audit log or the refusal counters: keep it short and
    // printable.
    Some(capped(&raw, MAX_CLAIMED_ID_BYTES))
}

impl From<KeyRingError> for OAuthError {
    fn from(err: KeyRingError) -> Self {
        match err {
            KeyRingError::Store(e) => Self::Store(e),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Records the jti values a request used (one statement for both, no savepoint); a refusal if
/// one was seen before (a replay). Every write transaction of an endpoint that authenticates
/// clients from the client cache starts here, so this is also where such a client is confirmed
/// to be still active with the keys that verified its assertion.
fn remember_jtis(
    tx: &mut crate::store::Tx<'_>,
    client: &AuthenticatedClient,
    proof: Option<&DpopProof>,
) -> Result<Result<(), OAuthError>, StoreError> {
    if client.keys_from_cache {
        let jwks = client.client.jwks.as_deref().unwrap_or("");
        if !crate::store::registry::client_unchanged(tx, &client.client.client_id, jwks)? {
            return Ok(Err(OAuthError::InvalidClient {
                reason: "unknown or disabled client",
                basic: false,
            }));
        }
    }
    let dpop = proof.map(|p| (p.replay_scope(), p));
    let mut entries = Vec::with_capacity(2);
    if let Some(j) = &client.assertion_jti {
        entries.push((j.scope.as_str(), j.jti.as_str(), j.remember_until_ms));
    }
    if let Some((scope, p)) = &dpop {
        entries.push((scope.as_str(), p.jti.as_str(), p.replay_until_ms));
    }
    if entries.is_empty() {
        return Ok(Ok(()));
    }
    let fresh = crate::store::replay::remember_jtis(tx, &entries)?;
    let mut fresh = fresh.into_iter();
    if client.assertion_jti.is_some() && fresh.next() == Some(false) {
        return Ok(Err(OAuthError::InvalidClient {
            reason: "the client assertion was used before",
            basic: false,
        }));
    }
    if proof.is_some() && fresh.next() == Some(false) {
        return Ok(Err(OAuthError::InvalidDpopProof(
            "the DPoP proof was used before",
        )));
    }
    Ok(Ok(()))
}
