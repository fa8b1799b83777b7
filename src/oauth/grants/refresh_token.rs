//! The refresh_token grant (RFC 6749 §6) with rotation on every use (RFC 9700 §4.14.2): the
//! family moves on to its next token. Presenting a token the family has moved past means it was
//! copied: the whole family is revoked, and with it the device's access tokens. Tokens are bound
//! to their client and, when issued with DPoP, to the DPoP key (RFC 9449 §5). See
//! `oauth::rotation` for the token's form.
//!
//! One exception keeps devices on lossy links paired: the token just before the current one,
//! presented again within `oauth.refresh_retry_grace_secs` of its use, by the same client with
//! a proof by the key the family is bound to, is a retry of a refresh whose answer was lost. It
//! gets the same successor refresh token back (re-derived from family and counter; the family
//! does not move) and an access token with the same claims. Only the holder of the private key
//! can sign that proof, so a copied token alone is still a reuse; two concurrent presentations of
//! one token get the same answer this way too.

use serde_json::json;

use super::{Committed, signing_failed};
use crate::events::{self, Action, Event, Subject};
use crate::ids::DeviceSerial;
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::id_token::user_of;
use crate::oauth::minting::{Grantee, Minter, TokenResponse};
use crate::oauth::rotation::{self, Presented, Standing};
use crate::oauth::tokens::device_token_stands;
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis};
use crate::store::Tx;
use crate::store::registry::{self, ActiveStatus};
use crate::store::tokens::DeviceTokenState;
use crate::store::tokens::{self as stored, FamilyRecord, FamilyStatus};
use crate::store::users;
use crate::verifier::dpop::DpopProof;

/// The refusal of a token the family has moved past (a reuse); `/metrics` counts it apart.
pub const REUSED: &str = "the refresh token was already used";

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
    let o = &oauth.settings.oauth;
    let refresh = Refresh {
        client,
        proof,
        presented,
        now: oauth.now_ms(),
        minter: oauth.minter(),
        idle_ms: i64::from(o.refresh_token_idle_secs.get()) * 1000,
        grace_ms: i64::from(o.refresh_retry_grace_secs) * 1000,
    };
    oauth.store.write(move |tx| refresh.run(tx)).await?
}

/// One refresh request, checked outside the write, for its write transaction.
struct Refresh {
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
    /// The presented token, if its MAC held.
    presented: Option<Presented>,
    now: i64,
    minter: Minter,
    idle_ms: i64,
    grace_ms: i64,
}

/// A family that still stands for the presenting client, the device it belongs to (`None` for
/// a service client) and the counter of the presented token.
struct Found {
    family: FamilyRecord,
    device: Option<DeviceTokenState>,
    counter: i64,
}

impl Refresh {
    /// The transaction, in this order: the jti values, the family and its device, reuse (or a
    /// retry within the grace), expiry, the DPoP binding, the family's move to the next token.
    fn run(self, tx: &mut Tx<'_>) -> Committed<TokenResponse> {
        if let Err(refusal) = remember_jtis(tx, &self.client, self.proof.as_ref())? {
            return Ok(Err(refusal));
        }
        let found = match self.standing_family(tx)? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (family, now) = (&found.family, self.now);
        let retry = Retry {
            counter: found.counter,
            jkt: self.proof.as_ref().map(|p| p.jkt.as_str()),
            now,
            grace_ms: self.grace_ms,
        };
        if rotation::standing(retry.counter, family.counter) == Standing::Used {
            if retry.within_grace(family) {
                return answer_again(&self.minter, family, now);
            }
            return reuse_detected(tx, family, found.device.is_some(), now);
        }
        if now >= family.idle_expires_at || now >= family.family_expires_at {
            return Ok(Err(OAuthError::InvalidGrant(
                "the refresh token has expired",
            )));
        }
        let jkt = match self.bound_key(family) {
            Ok(jkt) => jkt,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.rotate(tx, &found, &retry, jkt)
    }

    /// The presented token's family, if it is known, the client's, not revoked, and still
    /// belongs to the device as it is now (else the family is revoked here).
    fn standing_family(&self, tx: &mut Tx<'_>) -> Committed<Found> {
        let client_id = self.client.client.client_id.as_str();
        let invalid = |d| Ok(Err(OAuthError::InvalidGrant(d)));
        let found = match &self.presented {
            Some(presented) => rotation::find_family_and_device(tx, presented)?,
            None => None,
        };
        let (Some((family, device)), Some(presented)) = (found, &self.presented) else {
            return invalid("unknown refresh token");
        };
        if family.client_id != client_id {
            return invalid("the refresh token was issued to another client");
        }
        if family.status == FamilyStatus::Revoked {
            return invalid("the refresh token was revoked");
        }
        // The family is the client's, so this is the presenting device's state.
        if device.is_some_and(|d| !d.active) {
            // Enabled again, the device's family carries on: nothing is revoked here.
            return Ok(Err(OAuthError::InvalidClient {
                reason: "unknown or disabled client",
                basic: false,
            }));
        }
        if !holds(&family, device.as_ref()) {
            // The device was unpaired, moved or paired again since the family began.
            stored::revoke_family(tx, &family.family_id)?;
            return invalid("the refresh token was revoked");
        }
        if let Some(user) = user_of(&family.subject)
            && !person_stands(tx, user, family.tenant_id)?
        {
            // An app's family ends with the person's access: disabled, or moved elsewhere.
            stored::revoke_family(tx, &family.family_id)?;
            return invalid("the person can no longer sign in");
        }
        Ok(Ok(Found {
            counter: presented.counter(),
            family,
            device,
        }))
    }

    /// The key the new access token is bound to: the family's, which the request's proof must
    /// be by (RFC 9449 §5).
    fn bound_key(&self, family: &FamilyRecord) -> Result<Option<String>, OAuthError> {
        match (&family.jkt, &self.proof) {
            (Some(bound), Some(p)) if *bound == p.jkt => Ok(Some(bound.clone())),
            (Some(_), Some(_)) => Err(OAuthError::InvalidDpopProof(
                "the DPoP key differs from the one the refresh token is bound to",
            )),
            (Some(_), None) => Err(OAuthError::InvalidDpopProof(
                "this refresh token is bound to a DPoP key: send a proof",
            )),
            (None, _) => Ok(None),
        }
    }

    /// Moves the family on to its next token and answers with it.
    fn rotate(
        &self,
        tx: &mut Tx<'_>,
        found: &Found,
        retry: &Retry<'_>,
        jkt: Option<String>,
    ) -> Committed<TokenResponse> {
        let (family, now, minter) = (&found.family, self.now, &self.minter);
        // Of two concurrent uses exactly one moves the family on.
        let next = retry.counter + 1;
        let idle_expires_at = (now + self.idle_ms).min(family.family_expires_at);
        if !stored::advance_family(
            tx,
            &family.family_id,
            family.counter,
            next,
            now,
            idle_expires_at,
        )? {
            // The other use committed first (on PostgreSQL this statement waited for it, and
            // the next one sees what it wrote): if it was the same device with the same key,
            // both get its answer; anything else is a reuse.
            return match stored::find_family(tx, &family.family_id)? {
                Some(moved)
                    if moved.status == FamilyStatus::Active && retry.within_grace(&moved) =>
                {
                    answer_again(minter, &moved, now)
                }
                _ => reuse_detected(tx, family, found.device.is_some(), now),
            };
        }
        let (jwt, claims) = minter
            .access_token(grantee(family, jkt), now)
            .map_err(signing_failed)?;
        let refresh = minter.refresh_token(&family.family_id, next);
        Ok(Ok(minter.response(jwt, &claims, Some(refresh))))
    }
}

/// A presentation of a family's token, for the grace rule.
struct Retry<'a> {
    counter: i64,
    /// The thumbprint of the request's DPoP proof key.
    jkt: Option<&'a str>,
    now: i64,
    grace_ms: i64,
}

impl Retry<'_> {
    /// The token just before the family's current one, within the grace after its use (when
    /// the current one was issued), with a proof by the key the family is bound to. A family
    /// bound to no key has no grace: anyone holding a copy could retry.
    fn within_grace(&self, family: &FamilyRecord) -> bool {
        self.grace_ms > 0
            && self.counter == family.counter - 1
            && self.now < family.issued_at + self.grace_ms
            && self.now < family.idle_expires_at
            && self.now < family.family_expires_at
            && family.jkt.is_some()
            && family.jkt.as_deref() == self.jkt
    }
}

/// Whether a person an app's family was issued for is still active in the same company.
fn person_stands(
    tx: &mut Tx<'_>,
    user: crate::ids::UserId,
    tenant_id: Option<crate::ids::TenantId>,
) -> Result<bool, crate::store::StoreError> {
    Ok(users::find(tx, user)?
        .is_some_and(|u| u.status == ActiveStatus::Active && u.tenant_id == tenant_id))
}

/// Whether the family still belongs to the device as it is now: the tenant and token generation
/// it was issued for (`device` is `None` for service clients, whose families have neither).
fn holds(family: &FamilyRecord, device: Option<&DeviceTokenState>) -> bool {
    match device {
        Some(state) => device_token_stands(Some(state), family.tenant_id, family.generation),
        None => family.generation.is_none(),
    }
}

/// Who the family's access tokens are for; `jkt` is the key they are bound to.
fn grantee(family: &FamilyRecord, jkt: Option<String>) -> Grantee {
    Grantee {
        sub: family.subject.clone(),
        client_id: family.client_id.clone(),
        scope: family.scope.clone(),
        jkt,
        tenant_id: family.tenant_id,
        // A device's family carries its generation; its client_id is its serial.
        device: family.generation.map(|_| family.client_id.clone()),
        generation: family.generation,
        // A person's family is named in their access tokens (`sid`).
        family: user_of(&family.subject).map(|_| family.family_id.clone()),
    }
}

/// The answer to a retry within the grace: the family's current refresh token again, derived
/// from family and counter (nothing moves), and a new access token with the same claims.
fn answer_again(minter: &Minter, family: &FamilyRecord, now: i64) -> Committed<TokenResponse> {
    let (jwt, claims) = minter
        .access_token(grantee(family, family.jkt.clone()), now)
        .map_err(signing_failed)?;
    let refresh = minter.refresh_token(&family.family_id, family.counter);
    tracing::info!(
        client_id = family.client_id.as_str(),
        "refresh retried within the grace; answered with the same successor"
    );
    Ok(Ok(minter.response(jwt, &claims, Some(refresh))))
}

/// A token the family has moved past came back, outside the grace: revoke the family and, for a
/// device, every access token issued in its generation (the generation moves on, so telemetry
/// refuses them when its next batch commits), and record why.
fn reuse_detected(
    tx: &mut Tx<'_>,
    family: &FamilyRecord,
    is_device: bool,
    now: i64,
) -> Committed<TokenResponse> {
    let client_id = family.client_id.as_str();
    // A device has one live family (each pairing revokes the ones before), and `holds` checked
    // that this is it, so moving the device on ends exactly this family's tokens. Devices first,
    // then families: the order in which unpairing takes the same row locks.
    let revoked = if is_device {
        registry::revoke_device_tokens(tx, &DeviceSerial::from(client_id))? > 0
    } else {
        stored::revoke_family(tx, &family.family_id)?
    };
    events::record(
        tx,
        now,
        Event::new(
            Action::RefreshTokenReuse,
            format!("client:{client_id}"),
            Subject::Client(client_id.to_owned()),
        )
        .tenant(family.tenant_id)
        .detail(json!({ "family": family.family_id, "revoked": revoked })),
    )?;
    tracing::warn!(
        client_id,
        "refresh token reuse detected; token family revoked"
    );
    Ok(Err(OAuthError::InvalidGrant(REUSED)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn family(counter: i64, issued_at: i64, jkt: Option<&str>) -> FamilyRecord {
        FamilyRecord {
            family_id: "fam".into(),
            client_id: "SN-1".into(),
            subject: "device:SN-1".into(),
            tenant_id: Some(TenantId(7)),
            scope: "telemetry:write".into(),
            jkt: jkt.map(str::to_owned),
            counter,
            status: FamilyStatus::Active,
            created_at: 0,
            issued_at,
            idle_expires_at: issued_at + 1_000_000,
            family_expires_at: issued_at + 2_000_000,
            legacy_hash: None,
            generation: Some(3),
        }
    }

    fn retry(counter: i64, jkt: Option<&str>, now: i64) -> Retry<'_> {
        Retry {
            counter,
            jkt,
            now,
            grace_ms: 30_000,
        }
    }

    #[test]
    fn only_the_previous_token_with_the_bound_key_within_the_grace_is_a_retry() {
        let f = family(5, 100_000, Some("key"));
        assert!(retry(4, Some("key"), 100_000).within_grace(&f));
        assert!(retry(4, Some("key"), 129_999).within_grace(&f));
        assert!(
            !retry(4, Some("key"), 130_000).within_grace(&f),
            "grace over"
        );
        assert!(!retry(3, Some("key"), 100_000).within_grace(&f), "two back");
        assert!(!retry(5, Some("key"), 100_000).within_grace(&f), "current");
        assert!(
            !retry(4, Some("other"), 100_000).within_grace(&f),
            "other key"
        );
        assert!(!retry(4, None, 100_000).within_grace(&f), "no proof");
        let unbound = family(5, 100_000, None);
        assert!(
            !retry(4, None, 100_000).within_grace(&unbound),
            "no key, no grace"
        );
        let off = Retry {
            grace_ms: 0,
            ..retry(4, Some("key"), 100_000)
        };
        assert!(!off.within_grace(&f), "grace turned off");
    }

    #[test]
    fn a_family_holds_while_its_device_stays_where_it_was_issued() {
        let f = family(1, 0, Some("key"));
        let state = |tenant_id, token_generation, active| DeviceTokenState {
            tenant_id,
            token_generation,
            active,
        };
        assert!(holds(&f, Some(&state(Some(TenantId(7)), 3, true))));
        assert!(
            !holds(&f, Some(&state(Some(TenantId(8)), 3, true))),
            "moved"
        );
        assert!(!holds(&f, Some(&state(None, 3, true))), "unpaired");
        assert!(
            !holds(&f, Some(&state(Some(TenantId(7)), 4, true))),
            "generation moved"
        );
        assert!(
            !holds(&f, Some(&state(Some(TenantId(7)), 3, false))),
            "disabled"
        );
        assert!(!holds(&f, None), "a device family without its device");
        let service = FamilyRecord {
            generation: None,
            tenant_id: None,
            ..family(1, 0, None)
        };
        assert!(holds(&service, None), "service clients have no device");
    }
}
