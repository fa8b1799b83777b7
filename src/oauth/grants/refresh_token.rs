//! The refresh_token grant (RFC 6749 §6) with rotation on every use (RFC 9700 §4.14.2): the
//! family moves on to its next token. Presenting a token the family has moved past means it was
//! copied: the whole family is revoked. Tokens are bound to their client and, when issued with
//! DPoP, to the DPoP key (RFC 9449 §5). See `oauth::rotation` for the token's form.

use serde_json::json;

use super::{Committed, signing_failed};
use crate::audit::{self, Action};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::dpop::DpopProof;
use crate::oauth::rotation::{self, Standing};
use crate::oauth::token::{Grantee, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis};
use crate::store::registry;
use crate::store::tokens::{self as stored, FamilyStatus};

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
    // The MAC is checked here, outside the write: a forged token costs the writer nothing.
    let presented = oauth.refresh_tokens.parse(presented);
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
            let family = match &presented {
                Some(presented) => rotation::find_family(tx, presented)?,
                None => None,
            };
            let (Some(family), Some(presented)) = (family, presented) else {
                return invalid("unknown refresh token");
            };
            if family.client_id != client_id {
                return invalid("the refresh token was issued to another client");
            }
            if family.status == FamilyStatus::Revoked {
                return invalid("the refresh token was revoked");
            }
            let counter = presented.counter();
            if rotation::standing(counter, family.counter) == Standing::Used {
                return reuse_detected(tx, &family.family_id, client_id, family.tenant_id, now);
            }
            if now >= family.idle_expires_at || now >= family.family_expires_at {
                return invalid("the refresh token has expired");
            }
            let jkt = match (&family.jkt, &proof) {
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
            // Of two concurrent uses exactly one moves the family on; the other is a reuse.
            let next = counter + 1;
            let idle_expires_at = (now + idle_ms).min(family.family_expires_at);
            if !stored::advance_family(
                tx,
                &family.family_id,
                family.counter,
                next,
                now,
                idle_expires_at,
            )? {
                return reuse_detected(tx, &family.family_id, client_id, family.tenant_id, now);
            }
            let device = registry::find_device(tx, client_id)?;
            let generation = device.as_ref().map(|d| d.token_generation);
            let (jwt, claims) = minter
                .access_token(
                    Grantee {
                        sub: family.subject,
                        client_id: client_id.to_owned(),
                        scope: family.scope,
                        jkt,
                        tenant_id: family.tenant_id,
                        device: device.map(|d| d.serial),
                        generation,
                    },
                    now,
                )
                .map_err(signing_failed)?;
            let refresh = minter.refresh_token(&family.family_id, next);
            Ok(Ok(minter.response(jwt, &claims, Some(refresh))))
        })
        .await?
}

/// A token the family has moved past came back: revoke the family and record why.
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
