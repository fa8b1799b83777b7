//! The authorization_code grant (RFC 6749 §4.1.3) for apps, with PKCE (RFC 7636 §4.5–4.6, S256
//! only): the code is the app's, sent back to the redirect URI it was issued for, within its
//! lifetime, with the verifier of its challenge, and once. A code presented again revokes the
//! refresh family it started, and with it the access tokens that family goes on to issue
//! (§4.1.2, §10.5). The answer carries an access token for the person (`sub` = `user:ID`), a
//! rotating refresh token (DPoP-bound when a proof came along) and, for `openid`, an ID token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Committed, signing_failed};
use crate::crypto::tokens::{self, hash_token};
use crate::events::{self, Action, Event, Subject};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::id_token::{self, IdTokenFacts};
use crate::oauth::minting::{Grantee, Minter, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis};
use crate::store::Tx;
use crate::store::apps::{self, CodeRecord};
use crate::store::registry::{ActiveStatus, ClientKind};
use crate::store::tokens::{self as stored, FIRST_COUNTER, NewFamily};
use crate::store::users::{self, UserRecord};
use crate::verifier::dpop::DpopProof;

/// The refusal of a code presented a second time; `/metrics` and the audit log see it apart.
pub const REUSED: &str = "the authorization code was already used";

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn plausible_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub async fn exchange(
    oauth: &OAuth,
    req: &OAuthRequest,
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
) -> Result<TokenResponse, OAuthError> {
    if client.client.kind != ClientKind::App {
        return Err(OAuthError::UnauthorizedClient);
    }
    let code = req.params.require("code", "code is required")?;
    let redirect_uri = req
        .params
        .require("redirect_uri", "redirect_uri is required")?
        .to_owned();
    let verifier = req
        .params
        .require("code_verifier", "code_verifier is required (PKCE)")?;
    if !plausible_verifier(verifier) {
        return Err(OAuthError::InvalidRequest(
            "code_verifier must be 43-128 characters of A-Z, a-z, 0-9, '-', '.', '_' or '~'",
        ));
    }
    let o = &oauth.settings.oauth;
    let redemption = Redemption {
        code_hash: hash_token(code),
        redirect_uri,
        challenge: s256(verifier),
        client,
        proof,
        now: oauth.now_ms(),
        minter: oauth.minter(),
        idle_ms: i64::from(o.refresh_token_idle_secs.get()) * 1000,
        absolute_ms: i64::from(o.refresh_token_absolute_secs.get()) * 1000,
    };
    oauth.store.write(move |tx| redemption.run(tx)).await?
}

struct Redemption {
    code_hash: String,
    redirect_uri: String,
    /// The S256 challenge of the presented verifier.
    challenge: String,
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
    now: i64,
    minter: Minter,
    idle_ms: i64,
    absolute_ms: i64,
}

impl Redemption {
    fn run(self, tx: &mut Tx<'_>) -> Committed<TokenResponse> {
        if let Err(refusal) = remember_jtis(tx, &self.client, self.proof.as_ref())? {
            return Ok(Err(refusal));
        }
        let (code, user) = match self.standing_code(tx)? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.issue(tx, code, &user)
    }

    /// The presented code, if it is this client's, unused, live, for this redirect URI and
    /// verifier (and DPoP key, if it named one), and its person still active. A code presented
    /// again revokes what it issued.
    fn standing_code(&self, tx: &mut Tx<'_>) -> Committed<(CodeRecord, UserRecord)> {
        let invalid = |d| Ok(Err(OAuthError::InvalidGrant(d)));
        let Some(code) = apps::find_code(tx, &self.code_hash)? else {
            return invalid("unknown authorization code");
        };
        if code.client_id != self.client.client.client_id {
            return invalid("the authorization code was issued to another client");
        }
        if code.used_at.is_some() {
            return reused(tx, &code, self.now);
        }
        if self.now >= code.expires_at {
            return invalid("the authorization code has expired");
        }
        if code.redirect_uri != self.redirect_uri {
            return invalid("redirect_uri differs from the authorization request's");
        }
        if code.code_challenge != self.challenge {
            return invalid("code_verifier does not match the code_challenge");
        }
        if let Some(bound) = &code.dpop_jkt
            && self.proof.as_ref().map(|p| &p.jkt) != Some(bound)
        {
            return Ok(Err(OAuthError::InvalidDpopProof(
                "the authorization request named dpop_jkt: send a proof by that key",
            )));
        }
        let user = users::find(tx, code.user_id)?.filter(|u| u.status == ActiveStatus::Active);
        match user {
            Some(user) => Ok(Ok((code, user))),
            None => invalid("the person can no longer sign in"),
        }
    }

    /// Redeems the code: a refresh family, an access token and, for `openid`, an ID token.
    fn issue(
        &self,
        tx: &mut Tx<'_>,
        code: CodeRecord,
        user: &UserRecord,
    ) -> Committed<TokenResponse> {
        let client_id = self.client.client.client_id.as_str();
        let jkt = self.proof.as_ref().map(|p| p.jkt.clone());
        let family_id = tokens::new_id();
        let subject = id_token::subject(user.id);
        let grantee = Grantee {
            sub: subject.clone(),
            client_id: client_id.to_owned(),
            scope: code.scope.clone(),
            jkt: jkt.clone(),
            tenant_id: user.tenant_id,
            device: None,
            generation: None,
            family: Some(family_id.clone()),
        };
        let (jwt, claims) = self
            .minter
            .access_token(grantee, self.now)
            .map_err(signing_failed)?;
        let issued = apps::Issued {
            family_id: &family_id,
            access_jti: &claims.jti,
            access_expires_at: claims.exp.saturating_mul(1000),
        };
        if !apps::redeem_code(tx, &code.code_hash, &issued, self.now)? {
            // Another request redeemed it first: this one is the second use.
            let code = apps::find_code(tx, &code.code_hash)?.unwrap_or(code);
            return reused(tx, &code, self.now);
        }
        stored::insert_family(
            tx,
            &NewFamily {
                family_id: family_id.clone(),
                client_id: client_id.to_owned(),
                subject: subject.clone(),
                tenant_id: user.tenant_id,
                scope: code.scope.clone(),
                jkt,
                created_at: self.now,
                idle_expires_at: self.now + self.idle_ms,
                family_expires_at: self.now + self.absolute_ms,
                generation: None,
            },
        )?;
        let refresh = self.minter.refresh_token(&family_id, FIRST_COUNTER);
        let mut response = self.minter.response(jwt, &claims, Some(refresh));
        if code.scope.split(' ').any(|s| s == "openid") {
            let facts = IdTokenFacts {
                user,
                client_id,
                scope: &code.scope,
                nonce: code.nonce.as_deref(),
                auth_time_ms: code.auth_time,
                amr: &code.amr,
            };
            let token = id_token::sign(&self.minter, &facts, self.now).map_err(signing_failed)?;
            response.id_token = Some(token);
        }
        let event = Event::new(
            Action::AppSignedIn,
            subject,
            Subject::Client(client_id.to_owned()),
        )
        .tenant(user.tenant_id)
        .detail(json!({ "scope": code.scope, "amr": code.amr, "jti": claims.jti }));
        events::record(tx, self.now, event)?;
        Ok(Ok(response))
    }
}

/// A code came back after it was redeemed: whatever it issued is revoked (RFC 6749 §4.1.2).
fn reused<T>(tx: &mut Tx<'_>, code: &CodeRecord, now: i64) -> Committed<T> {
    let revoked = match &code.family_id {
        Some(family) => stored::revoke_family(tx, family)?,
        None => false,
    };
    if let (Some(jti), Some(exp)) = (&code.access_jti, code.access_expires_at) {
        stored::revoke_access_token(tx, jti, exp)?;
    }
    let client_id = code.client_id.as_str();
    let tenant = users::find(tx, code.user_id)?.and_then(|u| u.tenant_id);
    let event = Event::new(
        Action::RefreshTokenReuse,
        format!("client:{client_id}"),
        Subject::Client(client_id.to_owned()),
    )
    .tenant(tenant)
    .detail(json!({ "authorization_code": true, "family": code.family_id, "revoked": revoked }));
    events::record(tx, now, event)?;
    tracing::warn!(
        client_id,
        "authorization code presented again; what it issued is revoked"
    );
    Ok(Err(OAuthError::InvalidGrant(REUSED)))
}
