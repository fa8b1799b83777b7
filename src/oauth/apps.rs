//! Apps that sign people in with OpenID Connect: registered by the CLI, by a company's owners
//! for their company, or by the manufacturer's staff for every company. An app is public (a
//! browser or native app: no secret, PKCE alone) or confidential (`private_key_jwt` or a
//! secret), and names the exact URIs people may be sent back to.

use serde_json::json;
use url::Url;

use super::client_auth::hash_secret;
use super::clients::{
    ClientCredential, ClientError, CreatedClient, Disabled, checked_name, disable_in, new_client_id,
};
use crate::events::{self, Action, Event, Subject};
use crate::ids::TenantId;
use crate::store::apps::{self, AppRecord, NewApp};
use crate::store::registry::{self, ClientKind, NewClient};
use crate::store::{Store, StoreError};

/// What an app may ask for: `openid` (an ID token), `email` and `profile` (those claims), and
/// `telemetry:read` (the person's devices' readings).
pub const APP_SCOPES: [&str; 4] = ["openid", "email", "profile", "telemetry:read"];

/// At most this many redirect URIs of each purpose per app.
pub const MAX_REDIRECT_URIS: usize = 10;

/// How an app authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum AppKind {
    /// No credential: PKCE alone protects its codes (RFC 6749 §2.1, RFC 7636).
    Public,
    Confidential(ClientCredential),
}

/// An app to register.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub name: String,
    pub kind: AppKind,
    /// The company whose people it signs in; `None` for the manufacturer's apps (every company).
    pub tenant_id: Option<TenantId>,
    /// Asks for no consent: only the manufacturer's staff and the CLI may say so.
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("at least one redirect URI is needed")]
    NoRedirectUri,
    #[error("at most {MAX_REDIRECT_URIS} redirect URIs of each kind")]
    TooManyRedirectUris,
    #[error(
        "{0:?} is not an acceptable redirect URI: use an absolute https URI without a fragment \
         (http only for localhost, 127.0.0.1 or [::1]; or a private-use scheme such as \
         com.example.app:/callback)"
    )]
    InvalidRedirectUri(String),
    #[error("no such company")]
    NoSuchTenant,
    #[error("only the manufacturer registers apps for every company or apps without consent")]
    NotPermitted,
    #[error("no such app")]
    NotFound,
    #[error("this app has no secret: it is public, or authenticates with its own keys")]
    NoSecret,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who registers or manages apps, as plain facts the caller establishes (the portal from the
/// session, after a step-up; `oauth` does not depend on `accounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrar {
    /// An owner of this company: its own apps only, never first-party.
    Company(TenantId),
    /// The manufacturer (its staff, or the operator's CLI): every app.
    Manufacturer,
}

impl Registrar {
    /// The company whose apps this registrar sees; `None`: all of them.
    fn scope(self) -> Option<TenantId> {
        match self {
            Self::Company(tenant) => Some(tenant),
            Self::Manufacturer => None,
        }
    }

    fn may_register(self, registration: &AppRegistration) -> bool {
        match self {
            Self::Company(tenant) => {
                registration.tenant_id == Some(tenant) && !registration.first_party
            }
            Self::Manufacturer => true,
        }
    }

    fn manages(self, app: &AppRecord) -> bool {
        self.scope().is_none_or(|t| app.tenant_id == Some(t))
    }
}

/// Whether `uri` may be registered as a redirect URI (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700
/// §4.1.1: absolute, no fragment, exact match later; https, loopback http, or a private-use
/// scheme with a dot for native apps).
pub fn acceptable_redirect_uri(uri: &str) -> bool {
    if uri.len() > 2000 || uri.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        scheme => scheme.contains('.'),
    }
}

fn checked_uris(uris: &[String]) -> Result<Vec<String>, AppError> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(AppError::TooManyRedirectUris);
    }
    let mut out: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        let uri = uri.trim();
        if !acceptable_redirect_uri(uri) {
            return Err(AppError::InvalidRedirectUri(uri.to_owned()));
        }
        if !out.iter().any(|u| u == uri) {
            out.push(uri.to_owned());
        }
    }
    Ok(out)
}

/// Registers an app for `registrar`, who may register only what [`Registrar`] allows; the
/// company named must exist.
pub async fn register_app(
    store: &Store,
    now_ms: i64,
    actor: &str,
    registrar: Registrar,
    registration: AppRegistration,
) -> Result<CreatedClient, AppError> {
    if !registrar.may_register(&registration) {
        return Err(AppError::NotPermitted);
    }
    if let Some(tenant) = registration.tenant_id {
        let found = store
            .read(move |tx| registry::find_tenant(tx, tenant))
            .await?;
        if found.is_none() {
            return Err(AppError::NoSuchTenant);
        }
    }
    create_app(store, now_ms, actor, registration).await
}

/// The apps `registrar` manages, newest first.
pub async fn apps_of(store: &Store, registrar: Registrar) -> Result<Vec<AppRecord>, AppError> {
    let scope = registrar.scope();
    Ok(store.read(move |tx| apps::list_apps(tx, scope)).await?)
}

/// Disables one of the apps `registrar` manages: it authenticates no more, so its codes and
/// refresh tokens are refused at the token endpoint, and its sign-in requests are refused.
/// Audited as `client.disabled`; returns whether it was active. Another company's app is
/// [`AppError::NotFound`].
pub async fn disable_app(
    store: &Store,
    now_ms: i64,
    actor: &str,
    registrar: Registrar,
    client_id: &str,
) -> Result<bool, AppError> {
    let (actor, client_id) = (actor.to_owned(), client_id.to_owned());
    store
        .write(move |tx| {
            let found = apps::find_app(tx, &client_id)?;
            let Some(app) = found.filter(|a| registrar.manages(a)) else {
                return Ok(Err(AppError::NotFound));
            };
            if !app.active {
                return Ok(Ok(false));
            }
            let disabled = Disabled::App(app.tenant_id);
            disable_in(tx, now_ms, actor, &client_id, &app.name, disabled)?;
            Ok::<_, StoreError>(Ok(true))
        })
        .await?
}

/// The app `client_id` if `registrar` manages it and it is active (else [`AppError::NotFound`]).
fn managed_app(
    tx: &mut crate::store::Tx<'_>,
    registrar: Registrar,
    client_id: &str,
) -> Result<Result<AppRecord, AppError>, StoreError> {
    let found = apps::find_app(tx, client_id)?;
    Ok(found
        .filter(|a| a.active && registrar.manages(a))
        .ok_or(AppError::NotFound))
}

/// One of the apps `registrar` manages, if it may see it.
pub async fn app_of(
    store: &Store,
    registrar: Registrar,
    client_id: &str,
) -> Result<AppRecord, AppError> {
    let client_id = client_id.to_owned();
    store
        .read(move |tx| {
            let found = apps::find_app(tx, &client_id)?;
            Ok::<_, StoreError>(found.filter(|a| registrar.manages(a)))
        })
        .await?
        .ok_or(AppError::NotFound)
}

/// Replaces the URIs an active app sends people back to, after sign-in and after sign-out (the
/// same rules as at registration). Audited as `app.updated`.
pub async fn set_app_uris(
    store: &Store,
    now_ms: i64,
    actor: &str,
    registrar: Registrar,
    client_id: &str,
    (redirect_uris, post_logout): (&[String], &[String]),
) -> Result<(), AppError> {
    let redirect_uris = checked_uris(redirect_uris)?;
    if redirect_uris.is_empty() {
        return Err(AppError::NoRedirectUri);
    }
    let post_logout = checked_uris(post_logout)?;
    let (actor, client_id) = (actor.to_owned(), client_id.to_owned());
    store
        .write(move |tx| {
            let app = match managed_app(tx, registrar, &client_id)? {
                Ok(app) => app,
                Err(e) => return Ok(Err(e)),
            };
            apps::replace_uris(tx, &client_id, &redirect_uris, &post_logout)?;
            let detail = json!({
                "change": "redirect_uris",
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout,
            });
            let event = Event::new(Action::AppUpdated, actor, Subject::Client(client_id))
                .tenant(app.tenant_id)
                .detail(detail);
            events::record(tx, now_ms, event)?;
            Ok::<_, StoreError>(Ok(()))
        })
        .await?
}

/// Gives an active confidential app that uses a secret a new one, to show once; the old secret
/// stops working at once (its tokens do not end). Audited as `app.updated`.
pub async fn new_app_secret(
    store: &Store,
    now_ms: i64,
    actor: &str,
    registrar: Registrar,
    client_id: &str,
) -> Result<String, AppError> {
    let secret = crate::crypto::tokens::random_token();
    let hash = hash_secret(&secret);
    let (actor, client_id) = (actor.to_owned(), client_id.to_owned());
    store
        .write(move |tx| {
            let app = match managed_app(tx, registrar, &client_id)? {
                Ok(app) if app.public || app.keys => return Ok(Err(AppError::NoSecret)),
                Ok(app) => app,
                Err(e) => return Ok(Err(e)),
            };
            apps::set_secret_hash(tx, &client_id, &hash)?;
            let event = Event::new(Action::AppUpdated, actor, Subject::Client(client_id))
                .tenant(app.tenant_id)
                .detail(json!({ "change": "secret" }));
            events::record(tx, now_ms, event)?;
            Ok::<_, StoreError>(Ok(secret))
        })
        .await?
}

/// Registers an app; audited as `client.registered`. The secret, if any, is shown once. Callers
/// other than the operator's CLI go through [`register_app`].
pub async fn create_app(
    store: &Store,
    now_ms: i64,
    actor: &str,
    registration: AppRegistration,
) -> Result<CreatedClient, AppError> {
    let name = checked_name(&registration.name)?.to_owned();
    let redirect_uris = checked_uris(&registration.redirect_uris)?;
    if redirect_uris.is_empty() {
        return Err(AppError::NoRedirectUri);
    }
    let post_logout = checked_uris(&registration.post_logout_redirect_uris)?;
    let (jwks, secret) = match registration.kind {
        AppKind::Public => (None, None),
        AppKind::Confidential(credential) => credential.issue()?,
    };
    let client_id = new_client_id(&name);
    let client = NewClient {
        client_id: client_id.clone(),
        kind: ClientKind::App,
        name,
        jwks,
        secret_hash: secret.as_deref().map(hash_secret),
        scope: APP_SCOPES.join(" "),
        created_at: now_ms,
    };
    let (actor, tenant_id, first_party) = (
        actor.to_owned(),
        registration.tenant_id,
        registration.first_party,
    );
    store
        .write(move |tx| {
            let app = NewApp {
                client: &client,
                tenant_id,
                first_party,
                redirect_uris: &redirect_uris,
                post_logout_redirect_uris: &post_logout,
            };
            apps::insert_app(tx, &app)?;
            let auth = match (&client.jwks, &client.secret_hash) {
                (Some(_), _) => "private_key_jwt",
                (None, Some(_)) => "client_secret",
                (None, None) => "none",
            };
            let detail = json!({
                "name": client.name,
                "kind": "app",
                "auth": auth,
                "first_party": first_party,
                "redirect_uris": redirect_uris,
            });
            let subject = Subject::Client(client.client_id.clone());
            let event = Event::new(Action::ClientRegistered, actor, subject)
                .tenant(tenant_id)
                .detail(detail);
            events::record(tx, now_ms, event)?;
            Ok::<_, StoreError>(())
        })
        .await?;
    Ok(CreatedClient { client_id, secret })
}

#[cfg(test)]
mod tests {
    use super::acceptable_redirect_uri as ok;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_private_use() {
        assert!(ok("https://dash.example.com/callback"));
        assert!(ok("https://dash.example.com/cb?tenant=4"));
        assert!(ok("http://127.0.0.1:8400/callback"));
        assert!(ok("http://localhost/callback"));
        assert!(ok("http://[::1]:9000/cb"));
        assert!(ok("com.example.dash:/callback"));
        assert!(
            !ok("http://dash.example.com/callback"),
            "plain http elsewhere"
        );
        assert!(!ok("https://dash.example.com/cb#frag"), "fragment");
        assert!(!ok("https://user:pw@dash.example.com/cb"), "credentials");
        assert!(!ok("/callback"), "relative");
        assert!(!ok("javascript:alert(1)"), "no dot in the scheme");
        assert!(!ok("https://dash.example.com/c b"), "space");
    }
}
