//! The refresh_token grant (RFC 6749 §6) with rotation on every use (RFC 9700 §4.14.2): the old
//! token is consumed and a new one of the same family issued. Presenting a consumed token again
//! means it was copied: the whole family is revoked. Tokens are bound to their client and, when
//! issued with DPoP, to the DPoP key (RFC 9449 §5).

use serde_json::json;

use super::{Committed, signing_failed};
use crate::audit::{self, Action};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::dpop::DpopProof;
use crate::oauth::token::{Grantee, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis, tokens};
use crate::store::registry;
use crate::store::tokens::{self as stored, NewRefresh, RefreshStatus};

pub async fn exchange(
    oauth: &OAuth,
    req: &OAuthRequest,
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
) -> Result<TokenResponse, OAuthError> {
    let presented = req
        .params
        .require("refresh_token", "refresh_token is required")?;
    if req.params.get("scope").is_some_and(|s| !s.is_empty()) {
        // Narrowing on refresh is not offered: a device has exactly one scope.
        return Err(OAuthError::InvalidScope);
    }
    let hash = tokens::hash_token(presented);
    let now = oauth.now_ms();
    let minter = oauth.minter();
    let idle_ms = i64::from(oauth.settings.oauth.refresh_token_idle_secs.get()) * 1000;

    oauth
        .store
        .write(move |tx| -> Committed<TokenResponse> {
            if let Err(refusal) = remember_jtis(tx, &client, proof.as_ref())? {
                return Ok(Err(refusal));
            }
            let client_id = client.client.client_id.as_str();
            let invalid = |d| Ok(Err(OAuthError::InvalidGrant(d)));
            let Some(token) = stored::find_refresh(tx, &hash)? else {
                return invalid("unknown refresh token");
            };
            if token.client_id != client_id {
                return invalid("the refresh token was issued to another client");
            }
            match token.status {
                RefreshStatus::Revoked => return invalid("the refresh token was revoked"),
                RefreshStatus::Consumed => {
                    return reuse_detected(tx, &token.family_id, client_id, token.tenant_id, now);
                }
                RefreshStatus::Active => {}
            }
            if now >= token.idle_expires_at || now >= token.family_expires_at {
                return invalid("the refresh token has expired");
            }
            let jkt = match (&token.jkt, &proof) {
                (Some(bound), Some(p)) if *bound == p.jkt => Some(bound.clone()),
                (Some(_), Some(_)) => {
                    return Ok(Err(OAuthError::InvalidDpopProof(
                        "the DPoP key differs from the one the refresh token is bound to",
                    )));
                }
                (Some(_), None) => {
                    return Ok(Err(OAuthError::InvalidDpopProof(
                        "this refresh token is bound to a DPoP key: send a proof",
                    )));
                }
                (None, _) => None,
            };
            // Of two concurrent uses exactly one consumes the token; the other is a reuse.
            if !stored::consume_refresh(tx, token.id)? {
                return reuse_detected(tx, &token.family_id, client_id, token.tenant_id, now);
            }
            let device = registry::find_device(tx, client_id)?;
            let generation = device.as_ref().map(|d| d.token_generation);
            let (jwt, claims) = minter
                .access_token(
                    Grantee {
                        sub: token.subject.clone(),
                        client_id: client_id.to_owned(),
                        scope: token.scope.clone(),
                        jkt: jkt.clone(),
                        tenant_id: token.tenant_id,
                        device: device.map(|d| d.serial),
                        generation,
                    },
                    now,
                )
                .map_err(signing_failed)?;
            let next = tokens::new_refresh_token();
            stored::insert_refresh(
                tx,
                &NewRefresh {
                    token_hash: tokens::hash_token(&next),
                    family_id: token.family_id.clone(),
                    client_id: client_id.to_owned(),
                    subject: token.subject.clone(),
                    tenant_id: token.tenant_id,
                    scope: token.scope.clone(),
                    jkt,
                    status: "active",
                    created_at: now,
                    idle_expires_at: (now + idle_ms).min(token.family_expires_at),
                    family_expires_at: token.family_expires_at,
                },
            )?;
            Ok(Ok(minter.response(jwt, &claims, Some(next))))
        })
        .await?
}

/// A consumed refresh token came back: revoke its family and record why.
fn reuse_detected(
    tx: &mut crate::store::Tx<'_>,
    family_id: &str,
    client_id: &str,
    tenant_id: Option<i64>,
    now: i64,
) -> Committed<TokenResponse> {
    let revoked = stored::revoke_family(tx, family_id)?;
    crate::store::audit::append(
        tx,
        &audit::event(
            now,
            Action::RefreshTokenReuse,
            format!("client:{client_id}"),
            format!("client:{client_id}"),
            tenant_id,
            json!({ "family": family_id, "revoked": revoked }),
        ),
    )?;
    tracing::warn!(
        client_id,
        "refresh token reuse detected; token family revoked"
    );
    Ok(Err(OAuthError::InvalidGrant(
        "the refresh token was already used",
    )))
}
