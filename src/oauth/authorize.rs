//! The authorization endpoint of the code flow (RFC 6749 §4.1, RFC 7636 with S256 only, OpenID
//! Connect Core §3.1.2): the request is checked (a client or redirect URI that does not match is
//! shown to the person, never redirected to; anything else goes back to the app as an error),
//! then the person the portal signed in is weighed against it (their company, a fresh sign-in
//! asked by `max_age`, `prompt` or `acr_values`, a consent for a third-party app), and a code
//! is issued.
//!
//! The portal's session is the HTTP layer's business: this module sees the person as
//! [`Person`], plain facts.

use serde_json::json;
use url::Url;

use super::apps::APP_SCOPES;
use super::{OAuth, Params};
use crate::crypto::tokens::{hash_token, random_token};
use crate::events::{self, Action, Event, Subject};
use crate::ids::{TenantId, UserId};
use crate::store::apps::{self, AppRecord, CodeRecord};
use crate::store::{StoreError, Tx};

/// How long a code may wait to be redeemed (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_LIFETIME_MS: i64 = 60_000;
/// The longest `state` and `nonce` kept.
const MAX_STATE_BYTES: usize = 512;

/// Authentication context classes (`acr`): a password alone, a second factor, a passkey.
pub const ACR_PASSWORD: &str = "pwd";
pub const ACR_MFA: &str = "mfa";
pub const ACR_PHISHING_RESISTANT: &str = "phr";

/// The person the portal signed in, as the authorization endpoint needs them.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    /// How they authenticated (`pwd`, `otp`, `hwk`).
    pub amr: Vec<String>,
    /// When they last proved who they are (Unix ms).
    pub auth_time_ms: i64,
    /// They proved it again while this very request was read (a step-up asked for by it).
    pub just_authenticated: bool,
    pub has_totp: bool,
    pub has_passkey: bool,
}

impl Person {
    fn has(&self, method: &str) -> bool {
        self.amr.iter().any(|m| m == method)
    }
}

/// The class of a sign-in that used these methods.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "hwk") {
        ACR_PHISHING_RESISTANT
    } else if amr.iter().any(|m| m == "otp") {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub app: AppRecord,
    pub back: Return,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub dpop_jkt: Option<String>,
    pub max_age_secs: Option<i64>,
    /// The classes asked for, in order of preference.
    pub acr_values: Vec<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
}

/// Where and how the answer goes back to the app.
#[derive(Debug, Clone)]
pub struct Return {
    pub redirect_uri: String,
    pub state: Option<String>,
    /// RFC 9207: the issuer, so the app knows who answered.
    pub issuer: String,
}

impl Return {
    /// The redirect URI with these parameters (and `state`, `iss`) added to its query.
    pub fn url(&self, params: &[(&str, &str)]) -> String {
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            return self.redirect_uri.clone();
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.issuer);
        }
        url.into()
    }

    /// An error response (RFC 6749 §4.1.2.1).
    pub fn error(&self, error: &str, description: &str) -> String {
        self.url(&[("error", error), ("error_description", description)])
    }
}

/// Why an authorization request stops.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: tell the person, send nobody anywhere
    /// (RFC 6749 §4.1.2.1).
    #[error("{0}")]
    Shown(&'static str),
    /// Sent back to the app: the URL to send the person to.
    #[error("{error}: {description}")]
    ToApp {
        error: &'static str,
        description: &'static str,
        url: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn to_app(back: &Return, error: &'static str, description: &'static str) -> AuthorizeError {
    AuthorizeError::ToApp {
        error,
        description,
        url: back.error(error, description),
    }
}

/// What the person must do before a code is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interaction {
    /// Confirm who they are again (a step-up: passkey or code).
    pub authenticate: bool,
    /// Allow the app what it asks for.
    pub consent: bool,
}

impl Interaction {
    pub fn none(self) -> bool {
        !self.authenticate && !self.consent
    }
}

fn printable(v: &str) -> bool {
    v.len() <= MAX_STATE_BYTES && !v.chars().any(char::is_control)
}

/// RFC 7636 §4.2: an S256 challenge is the 43-character base64url SHA-256 of the verifier.
fn plausible_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A refusal for the app: (error code, description).
type Refusal = (&'static str, &'static str);

/// Request objects, and any response type but `code`.
fn unsupported(params: &Params) -> Result<(), Refusal> {
    if params.get("request").is_some() {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported"));
    }
    match params.get("response_type") {
        Some("code") => Ok(()),
        None | Some("") => Err(("invalid_request", "response_type is required")),
        Some(_) => Err((
            "unsupported_response_type",
            "only response_type=code is supported",
        )),
    }
}

/// The scopes asked for: some, and only an app's.
fn scope(params: &Params) -> Result<Vec<String>, Refusal> {
    let scope: Vec<String> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scope.is_empty() {
        return Err(("invalid_scope", "scope is required"));
    }
    if scope.iter().any(|s| !APP_SCOPES.contains(&s.as_str())) {
        return Err((
            "invalid_scope",
            "scope may hold openid, email, profile and telemetry:read",
        ));
    }
    Ok(scope)
}

/// The PKCE challenge (RFC 7636 §4.3): required, S256 only (a missing method means `plain`).
fn pkce(params: &Params) -> Result<String, Refusal> {
    let challenge = params.get("code_challenge").unwrap_or("");
    if challenge.is_empty() {
        return Err((
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    }
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None | Some("" | "plain") => {
            return Err((
                "invalid_request",
                "only code_challenge_method=S256 is supported",
            ));
        }
        Some(_) => {
            return Err((
                "invalid_request",
                "unsupported code_challenge_method: use S256",
            ));
        }
    }
    if !plausible_challenge(challenge) {
        return Err((
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    Ok(challenge.to_owned())
}

/// `nonce`, `max_age` and `dpop_jkt`, each optional.
type Extras = (Option<String>, Option<i64>, Option<String>);

fn extras(params: &Params) -> Result<Extras, Refusal> {
    let nonce = params.get("nonce").filter(|n| !n.is_empty());
    if nonce.is_some_and(|n| !printable(n)) {
        return Err(("invalid_request", "nonce is too long"));
    }
    let max_age = match params.get("max_age").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return Err(("invalid_request", "max_age must be a number of seconds")),
        },
    };
    let dpop_jkt = params.get("dpop_jkt").filter(|j| !j.is_empty());
    if dpop_jkt.is_some_and(|j| !plausible_challenge(j)) {
        return Err((
            "invalid_request",
            "dpop_jkt must be a JWK SHA-256 thumbprint",
        ));
    }
    Ok((
        nonce.map(str::to_owned),
        max_age,
        dpop_jkt.map(str::to_owned),
    ))
}

/// `prompt` as (none, login, consent); `select_account` asks nothing of a single account.
fn prompt(params: &Params) -> Result<(bool, bool, bool), Refusal> {
    let mut prompt = (false, false, false);
    for p in params.get("prompt").unwrap_or("").split(' ') {
        match p {
            "" | "select_account" => {}
            "none" => prompt.0 = true,
            "login" => prompt.1 = true,
            "consent" => prompt.2 = true,
            _ => return Err(("invalid_request", "unknown prompt value")),
        }
    }
    if prompt.0 && (prompt.1 || prompt.2) {
        return Err(("invalid_request", "prompt=none goes alone"));
    }
    Ok(prompt)
}

impl OAuth {
    /// Checks an authorization request: first the client and the redirect URI (shown to the
    /// person when wrong), then the rest (sent back to the app when wrong).
    pub async fn authorization(&self, params: &Params) -> Result<Authorization, AuthorizeError> {
        let client_id = params
            .get("client_id")
            .filter(|c| !c.is_empty() && printable(c))
            .ok_or(AuthorizeError::Shown(
                "The request names no app (client_id).",
            ))?
            .to_owned();
        let app = self
            .store
            .read(move |tx| apps::find_app(tx, &client_id))
            .await?
            .filter(|a| a.active)
            .ok_or(AuthorizeError::Shown(
                "The app that sent you here is not registered with pairgate, or was disabled.",
            ))?;
        let redirect_uri = params.get("redirect_uri").unwrap_or("");
        if !app.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::Shown(
                "The app that sent you here asked to send you back to an address it has not \
                 registered, so pairgate will not send you there.",
            ));
        }
        let back = Return {
            redirect_uri: redirect_uri.to_owned(),
            state: params.get("state").map(str::to_owned),
            issuer: self.issuer.clone(),
        };
        if back.state.as_deref().is_some_and(|s| !printable(s)) {
            return Err(to_app(&back, "invalid_request", "state is too long"));
        }
        self.check_request(params, app, back)
    }

    fn check_request(
        &self,
        params: &Params,
        app: AppRecord,
        back: Return,
    ) -> Result<Authorization, AuthorizeError> {
        let checked = (|| {
            unsupported(params)?;
            let scope = scope(params)?;
            let code_challenge = pkce(params)?;
            let (nonce, max_age_secs, dpop_jkt) = extras(params)?;
            let prompt = prompt(params)?;
            let acr_values = params
                .get("acr_values")
                .unwrap_or("")
                .split(' ')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(Authorization {
                app,
                back: back.clone(),
                scope,
                nonce,
                code_challenge,
                dpop_jkt,
                max_age_secs,
                acr_values,
                prompt_none: prompt.0,
                prompt_login: prompt.1,
                prompt_consent: prompt.2,
            })
        })();
        checked.map_err(|(error, description)| to_app(&back, error, description))
    }

    /// What the person still has to do, or a refusal for the app: people of another company
    /// than the app's, and `prompt=none` when something is needed.
    pub async fn interaction(
        &self,
        a: &Authorization,
        person: &Person,
    ) -> Result<Interaction, AuthorizeError> {
        if a.app.tenant_id.is_some() && a.app.tenant_id != person.tenant_id {
            return Err(to_app(
                &a.back,
                "access_denied",
                "this app signs in the people of another company",
            ));
        }
        let authenticate = !person.just_authenticated && self.wants_fresh_sign_in(a, person);
        let consent = if a.app.first_party {
            false
        } else if a.prompt_consent {
            true
        } else {
            let (user, client_id) = (person.user_id, a.app.client_id.clone());
            let granted = self
                .store
                .read(move |tx| apps::consent(tx, user, &client_id))
                .await?;
            !granted.is_some_and(|g| {
                let granted: Vec<&str> = g.split(' ').collect();
                a.scope.iter().all(|s| granted.contains(&s.as_str()))
            })
        };
        let needed = Interaction {
            authenticate,
            consent,
        };
        if a.prompt_none && !needed.none() {
            let error = if consent {
                "consent_required"
            } else {
                "login_required"
            };
            return Err(to_app(
                &a.back,
                error,
                "the person has to act before the app may sign them in",
            ));
        }
        Ok(needed)
    }

    /// `prompt=login`, a `max_age` the sign-in is older than, or an `acr_values` class above
    /// the sign-in's that the person can reach.
    fn wants_fresh_sign_in(&self, a: &Authorization, person: &Person) -> bool {
        if a.prompt_login {
            return true;
        }
        if let Some(max_age) = a.max_age_secs
            && self.now_ms() - person.auth_time_ms > max_age.saturating_mul(1000)
        {
            return true;
        }
        let wants = |v: &str| a.acr_values.iter().any(|x| x == v);
        (wants(ACR_PHISHING_RESISTANT) && !person.has("hwk") && person.has_passkey)
            || (wants(ACR_MFA)
                && !person.has("hwk")
                && !person.has("otp")
                && (person.has_totp || person.has_passkey))
    }

    /// Issues a code for the person (recording their consent first, if they just gave it);
    /// returns the URL that takes it back to the app.
    pub async fn issue_code(
        &self,
        a: &Authorization,
        person: &Person,
        consented: bool,
    ) -> Result<String, AuthorizeError> {
        let code = random_token();
        let now = self.now_ms();
        let record = CodeRecord {
            code_hash: hash_token(&code),
            client_id: a.app.client_id.clone(),
            user_id: person.user_id,
            redirect_uri: a.back.redirect_uri.clone(),
            scope: a.scope.join(" "),
            code_challenge: a.code_challenge.clone(),
            nonce: a.nonce.clone(),
            dpop_jkt: a.dpop_jkt.clone(),
            auth_time: person.auth_time_ms,
            amr: person.amr.join(" "),
            created_at: now,
            expires_at: now + CODE_LIFETIME_MS,
            used_at: None,
            family_id: None,
            access_jti: None,
            access_expires_at: None,
        };
        let tenant = person.tenant_id;
        let consent = (consented && !a.app.first_party).then(|| record.scope.clone());
        self.store
            .write(move |tx| issue(tx, &record, consent.as_deref(), tenant, now))
            .await?;
        Ok(a.back.url(&[("code", &code)]))
    }

    /// The person declined: the app hears `access_denied`.
    pub fn declined(&self, a: &Authorization) -> String {
        a.back
            .error("access_denied", "the person did not allow the app")
    }
}

fn issue(
    tx: &mut Tx<'_>,
    code: &CodeRecord,
    consent: Option<&str>,
    tenant: Option<TenantId>,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(scope) = consent {
        apps::grant_consent(tx, code.user_id, &code.client_id, scope, now)?;
        let event = Event::new(
            Action::AppConsentGiven,
            format!("user:{}", code.user_id),
            Subject::Client(code.client_id.clone()),
        )
        .tenant(tenant)
        .detail(json!({ "scope": scope }));
        events::record(tx, now, event)?;
    }
    apps::insert_code(tx, code)
}
