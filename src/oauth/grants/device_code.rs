//! The device_code grant (RFC 8628 §3.4–3.5): a device polls until a person decides; the one
//! poll that finds the approval redeems it for a DPoP-bound access token and a refresh token.

use serde_json::json;

use super::{Committed, signing_failed};
use crate::crypto::tokens;
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::DeviceSerial;
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::device_flow::{self, PollOutcome};
use crate::oauth::minting::{Grantee, Minter, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis};
use crate::store::Tx;
use crate::store::flows::{self, FlowRecord};
use crate::store::registry::{self, ClientKind, revoke_device_tokens};
use crate::store::tokens::{FIRST_COUNTER, NewFamily, insert_family};
use crate::verifier::dpop::DpopProof;

pub async fn exchange(
    oauth: &OAuth,
    req: &OAuthRequest,
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
) -> Result<TokenResponse, OAuthError> {
    if client.client.kind != ClientKind::Device {
        return Err(OAuthError::UnauthorizedClient);
    }
    let device_code = req
        .params
        .require("device_code", "device_code is required")?;
    let proof = proof.ok_or(OAuthError::InvalidDpopProof(
        "devices must send a DPoP proof: their tokens are bound to a key",
    ))?;
    let hash = tokens::hash_token(device_code);
    let o = &oauth.settings.oauth;
    let issue = Issue {
        minter: oauth.minter(),
        idle_ms: i64::from(o.refresh_token_idle_secs.get()) * 1000,
        absolute_ms: i64::from(o.refresh_token_absolute_secs.get()) * 1000,
        now: oauth.now_ms(),
    };

    oauth
        .store
        .write(move |tx| -> Committed<TokenResponse> {
            if let Err(refusal) = remember_jtis(tx, &client, Some(&proof))? {
                return Ok(Err(refusal));
            }
            // A device's client id is its serial.
            let serial = &DeviceSerial::from(client.client.client_id.as_str());
            let flow = match redeem(tx, serial, &hash, &proof, issue.now)? {
                Ok(flow) => flow,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let Some(device) = registry::find_device(tx, serial)? else {
                return Ok(Err(OAuthError::InvalidGrant(
                    "the device is no longer registered",
                )));
            };
            // Ending a pairing withdraws its uncollected approval (`pairing::end_pairing`); should
            // any path end one without that, the device still gets no tokens for a tenant it no
            // longer belongs to, and the approval counts as withdrawn.
            if flow.tenant_id.is_none() || device.tenant_id != flow.tenant_id {
                device_flow::withdraw_redeemed(tx, flow.id)?;
                return Ok(Err(OAuthError::AccessDenied));
            }
            // A new pairing replaces the device's earlier refresh tokens.
            revoke_device_tokens(tx, serial)?;
            issue.tokens(tx, serial, &flow, device.token_generation + 1, &proof)
        })
        .await?
}

/// Finds the flow of a device code and polls it: the flow, if this poll redeemed its approval.
fn redeem(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    hash: &str,
    proof: &DpopProof,
    now: i64,
) -> Committed<Box<FlowRecord>> {
    let Some(flow) = flows::find_by_device_code(tx, hash)? else {
        return Ok(Err(OAuthError::InvalidGrant("unknown device_code")));
    };
    if flow.client_id != serial.as_str() {
        return Ok(Err(OAuthError::InvalidGrant(
            "the device_code was issued to another client",
        )));
    }
    if flow.dpop_jkt.as_ref().is_some_and(|jkt| *jkt != proof.jkt) {
        return Ok(Err(OAuthError::InvalidGrant(
            "the DPoP key differs from the one that started the authorization",
        )));
    }
    Ok(match device_flow::poll(tx, &flow, now)? {
        PollOutcome::Redeemed(flow) => Ok(flow),
        other => Err(other
            .into_error()
            .unwrap_or(OAuthError::AuthorizationPending)),
    })
}

/// What issuing a redeemed approval's tokens needs inside the transaction.
struct Issue {
    minter: Minter,
    idle_ms: i64,
    absolute_ms: i64,
    now: i64,
}

impl Issue {
    /// The device's first access token and a new refresh-token family, bound to the proof's key,
    /// for the flow's tenant in the device's next token generation.
    fn tokens(
        &self,
        tx: &mut Tx<'_>,
        serial: &DeviceSerial,
        flow: &FlowRecord,
        generation: i64,
        proof: &DpopProof,
    ) -> Committed<TokenResponse> {
        let now = self.now;
        let (jwt, claims) = self
            .minter
            .access_token(
                Grantee {
                    sub: format!("device:{serial}"),
                    client_id: serial.to_string(),
                    scope: flow.scope.clone(),
                    jkt: Some(proof.jkt.clone()),
                    tenant_id: flow.tenant_id,
                    device: Some(serial.to_string()),
                    generation: Some(generation),
                    family: None,
                },
                now,
            )
            .map_err(signing_failed)?;
        let family_id = tokens::new_id();
        insert_family(
            tx,
            &NewFamily {
                family_id: family_id.clone(),
                client_id: serial.to_string(),
                subject: claims.sub.clone(),
                tenant_id: flow.tenant_id,
                scope: flow.scope.clone(),
                jkt: Some(proof.jkt.clone()),
                created_at: now,
                idle_expires_at: now + self.idle_ms,
                family_expires_at: now + self.absolute_ms,
                generation: Some(generation),
            },
        )?;
        let refresh = self.minter.refresh_token(&family_id, FIRST_COUNTER);
        // The ERP hears that the device holds tokens for its tenant now.
        let device = Subject::Device(serial.to_owned());
        let event = Event::new(Action::PairingTokensIssued, device.to_string(), device)
            .tenant(flow.tenant_id)
            .detail(json!({ "flow": flow.id, "jti": claims.jti, "jkt": proof.jkt }))
            .erp_without_detail(FeedType::PairingCompleted);
        events::record(tx, now, event)?;
        Ok(Ok(self.minter.response(jwt, &claims, Some(refresh))))
    }
}
