//! `POST /oauth/revoke` (RFC 7009): a client revokes its own refresh token (and with it the
//! token family and, for a device, its access tokens) or access token. Unknown, foreign or
//! already-invalid tokens still answer 200 (§2.2), so the endpoint reveals nothing.

use serde_json::json;

use super::rotation;
use super::{OAuth, OAuthError, OAuthRequest, paths, remember_jtis};
use crate::events::{self, Action, Event, Subject};
use crate::ids::DeviceSerial;
use crate::store::registry::{self, ClientKind};
use crate::store::tokens::{self as stored, FamilyStatus};
use crate::verifier::AccessClaims;

impl OAuth {
    pub async fn revoke(&self, req: &OAuthRequest) -> Result<(), OAuthError> {
        let mut authenticated = None;
        let result = self.revoke_inner(req, &mut authenticated).await;
        if let Err(err) = &result {
            self.record_refusal(paths::REVOKE, req, authenticated.as_deref(), err)
                .await;
        }
        result
    }

    /// Sets `authenticated` to the client id once the client has authenticated.
    async fn revoke_inner(
        &self,
        req: &OAuthRequest,
        authenticated: &mut Option<String>,
    ) -> Result<(), OAuthError> {
        let caller = self.authenticate(&req.credentials).await?;
        *authenticated = Some(caller.client.client_id.clone());
        let token = req.params.require("token", "token is required")?.to_owned();
        // Signatures and MACs are checked before the transaction.
        let (access, refresh): (Option<AccessClaims>, _) = if token.starts_with("pgr_") {
            (None, self.refresh_tokens.parse(&token))
        } else {
            (self.active_access_token(&token).await?, None)
        };
        let now = self.now_ms();
        let is_device = caller.client.kind == ClientKind::Device;
        self.store
            .write(move |tx| -> super::grants::Committed<()> {
                if let Err(refusal) = remember_jtis(tx, &caller, None)? {
                    return Ok(Err(refusal));
                }
                let client_id = caller.client.client_id.as_str();
                let revoked = if let Some(claims) = access.filter(|c| c.client_id == client_id) {
                    stored::revoke_access_token(tx, &claims.jti, claims.exp * 1000)?;
                    Some(json!({ "kind": "access_token", "jti": claims.jti }))
                } else if let Some(f) = match &refresh {
                    Some(presented) => rotation::find_family(tx, presented)?,
                    None => None,
                } {
                    // Any token of the family, used or current, ends the whole family.
                    if f.client_id != client_id || f.status == FamilyStatus::Revoked {
                        None
                    } else {
                        // RFC 7009 §2.1: revoking a refresh token may revoke the access tokens
                        // of the same grant; for a device that is all of them, and its one
                        // family. (The device's row first, then the families: the order in
                        // which unpairing takes the same locks.)
                        if is_device {
                            registry::revoke_device_tokens(tx, &DeviceSerial::from(client_id))?;
                        } else {
                            stored::revoke_family(tx, &f.family_id)?;
                        }
                        Some(json!({ "kind": "refresh_token", "family": f.family_id }))
                    }
                } else {
                    None
                };
                if let Some(detail) = revoked {
                    events::record(
                        tx,
                        now,
                        Event::new(
                            Action::TokenRevoked,
                            format!("client:{client_id}"),
                            Subject::Client(client_id.to_owned()),
                        )
                        .detail(detail),
                    )?;
                }
                Ok(Ok(()))
            })
            .await?
    }
}
