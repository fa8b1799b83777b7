//! The device_code grant (RFC 8628 §3.4–3.5): a device polls until a person decides; the one
//! poll that finds the approval redeems it for a DPoP-bound access token and a refresh token.

use serde_json::json;

use super::{Committed, signing_failed};
use crate::audit::{self, Action};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::device_flow::{self, PollOutcome};
use crate::oauth::token::{Grantee, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis, tokens};
use crate::store::flows::{self, FlowStatus};
use crate::store::registry::revoke_device_tokens;
use crate::store::registry::{self, ClientKind};
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
    let now = oauth.now_ms();
    let minter = oauth.minter();
    let o = &oauth.settings.oauth;
    let idle_ms = i64::from(o.refresh_token_idle_secs.get()) * 1000;
    let absolute_ms = i64::from(o.refresh_token_absolute_secs.get()) * 1000;

    oauth
        .store
        .write(move |tx| -> Committed<TokenResponse> {
            if let Err(refusal) = remember_jtis(tx, &client, Some(&proof))? {
                return Ok(Err(refusal));
            }
            let serial = client.client.client_id.as_str();
            let Some(flow) = flows::find_by_device_code(tx, &hash)? else {
                return Ok(Err(OAuthError::InvalidGrant("unknown device_code")));
            };
            if flow.client_id != serial {
                return Ok(Err(OAuthError::InvalidGrant(
                    "the device_code was issued to another client",
                )));
            }
            if flow.dpop_jkt.as_ref().is_some_and(|jkt| *jkt != proof.jkt) {
                return Ok(Err(OAuthError::InvalidGrant(
                    "the DPoP key differs from the one that started the authorization",
                )));
            }
            let flow = match device_flow::poll(tx, &flow, now)? {
                PollOutcome::Redeemed(flow) => flow,
                other => {
                    return Ok(Err(other
                        .into_error()
                        .unwrap_or(OAuthError::AuthorizationPending)));
                }
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
                flows::transition(tx, flow.id, FlowStatus::Consumed, FlowStatus::Denied, None)?;
                return Ok(Err(OAuthError::AccessDenied));
            }
            // A new pairing replaces the device's earlier refresh tokens.
            revoke_device_tokens(tx, serial)?;
            let generation = device.token_generation + 1;
            let (jwt, claims) = minter
                .access_token(
                    Grantee {
                        sub: format!("device:{serial}"),
                        client_id: serial.to_owned(),
                        scope: flow.scope.clone(),
                        jkt: Some(proof.jkt.clone()),
                        tenant_id: flow.tenant_id,
                        device: Some(serial.to_owned()),
                        generation: Some(generation),
                    },
                    now,
                )
                .map_err(signing_failed)?;
            let family_id = tokens::new_id();
            insert_family(
                tx,
                &NewFamily {
                    family_id: family_id.clone(),
                    client_id: serial.to_owned(),
                    subject: claims.sub.clone(),
                    tenant_id: flow.tenant_id,
                    scope: flow.scope.clone(),
                    jkt: Some(proof.jkt.clone()),
                    created_at: now,
                    idle_expires_at: now + idle_ms,
                    family_expires_at: now + absolute_ms,
                    generation: Some(generation),
                },
            )?;
            let refresh = minter.refresh_token(&family_id, FIRST_COUNTER);
            crate::store::audit::append(
                tx,
                &audit::event(
                    now,
                    Action::PairingTokensIssued,
                    format!("device:{serial}"),
                    format!("device:{serial}"),
                    flow.tenant_id,
                    json!({ "flow": flow.id, "jti": claims.jti, "jkt": proof.jkt }),
                ),
            )?;
            // ERP integration: the device holds tokens for its tenant now.
            crate::erp::events::record(
                tx,
                now,
                crate::erp::events::NewEvent::device(
                    crate::erp::events::EventType::PairingCompleted,
                    serial,
                )
                .with_tenant(flow.tenant_id),
            )?;
            Ok(Ok(minter.response(jwt, &claims, Some(refresh))))
        })
        .await?
}
