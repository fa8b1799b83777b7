//! OpenID Connect for the tenants' people: the code flow with PKCE through the portal's pages,
//! ID tokens checked with `jsonwebtoken` against the published keys, UserInfo, refresh,
//! RP-initiated logout, the refusals, and the user-scoped telemetry reads.

mod flow;
mod reads;
mod refusals;

use std::collections::HashMap;

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use pairgate::accounts::Role;
use pairgate::crypto::jose;
use pairgate::ids::{TenantId, UserId};
use pairgate::oauth::apps::{AppKind, AppRegistration, create_app};
use pairgate::oauth::clients::{ClientCredential, CreatedClient};
use serde_json::Value;

use crate::support::TestApp;
use crate::support::portal::{Browser, Page, extract};

pub const REDIRECT: &str = "https://dash.example.com/callback";
pub const AFTER_LOGOUT: &str = "https://dash.example.com/signed-out";

/// Registers an app; `secret`: confidential with a secret, else public.
pub async fn register(
    app: &TestApp,
    secret: bool,
    tenant: Option<TenantId>,
    first_party: bool,
) -> CreatedClient {
    let kind = if secret {
        AppKind::Confidential(ClientCredential::Secret)
    } else {
        AppKind::Public
    };
    create_app(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        AppRegistration {
            name: "Acme Dashboard".into(),
            kind,
            tenant_id: tenant,
            first_party,
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
        },
    )
    .await
    .expect("register an app")
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1–4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = format!("v-{}", crate::support::hex(&[7; 24]));
        let verifier = format!(
            "{verifier}{}",
            crate::support::hex(&crate::support::rand_bytes())
        );
        Self {
            challenge: jose::sha256_b64(&verifier),
            verifier,
        }
    }
}

/// The authorization request's path: code flow, PKCE S256, `state` and `nonce`, plus `extra`
/// (which replaces a parameter of the same name).
pub fn authorize_path(client_id: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile telemetry:read"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{query}")
}

/// Where a hand-off page sends the person (its meta refresh), if it is one.
pub fn handoff(page: &Page) -> Option<String> {
    let target = extract(&page.body, "<meta http-equiv=\"refresh\" content=\"0; url=")?;
    Some(
        target
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#61;", "="),
    )
}

/// The query parameters of `url`.
pub fn query(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url).expect("an absolute URL");
    parsed.query_pairs().into_owned().collect()
}

/// Follows an authorization request that needs nothing of the person: the code it hands back.
pub async fn code(b: &mut Browser<'_>, path: &str) -> String {
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let target = handoff(&page).unwrap_or_else(|| panic!("a hand-off page: {}", page.body));
    assert!(target.starts_with(REDIRECT), "{target}");
    let q = query(&target);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    q.get("code")
        .unwrap_or_else(|| panic!("a code: {target}"))
        .clone()
}

/// A token request; (status, JSON).
pub async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app.post_form("/oauth/token", form, &[]).await;
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap())
}

/// Redeems `code` for a public app.
pub async fn redeem(app: &TestApp, client_id: &str, code: &str, pkce: &Pkce) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

/// A person of `tenant` with a password only, signed in: their id and a browser holding the
/// session.
pub async fn person<'a>(
    app: &'a TestApp,
    tenant: Option<TenantId>,
    role: Role,
    email: &str,
) -> (UserId, Browser<'a>) {
    let (id, cookie) = crate::telemetry::sign_in(app, tenant, role, email).await;
    let b = Browser::new(app);
    b.set_session_cookie(&cookie);
    (id, b)
}

/// Verifies an ID token as an app would, with the published keys, for `client_id`.
pub async fn id_token_claims(app: &TestApp, token: &str, client_id: &str) -> Value {
    let jwks: JwkSet = app.get("/oauth/jwks").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.base.as_str()]);
    validation.set_audience(&[client_id]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the ID token verifies with the published keys")
        .claims
}

/// `GET path` with `Authorization: Bearer token`: (status, JSON).
pub async fn bearer_get(app: &TestApp, path: &str, token: &str) -> (u16, Value, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, res.json().await.unwrap(), challenge)
}
