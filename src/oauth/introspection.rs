//! `POST /oauth/introspect` (RFC 7662): for authenticated clients whose registered scope holds
//! `introspect` (resource servers, relying apps); RFC 7662 §2.1 and §4 ask for authorization,
//! not only authentication, since the answer describes someone else's token. Anything not active
//! answers `{"active": false}` and nothing else.

use serde_json::{Value, json};

use super::rotation::{self, Standing};
use super::tokens::{self, device_token_stands};
use super::{OAuth, OAuthError, OAuthRequest, paths};
use crate::ids::{DeviceSerial, TenantId};
use crate::store::registry::{self, ClientKind};
use crate::store::tokens::{self as stored, FamilyStatus};
use crate::verifier::AccessClaims;

/// The scope a client needs to introspect tokens.
pub const INTROSPECT_SCOPE: &str = "introspect";

impl OAuth {
    pub async fn introspect(&self, req: &OAuthRequest) -> Result<Value, OAuthError> {
        let mut authenticated = None;
        let result = self.introspect_inner(req, &mut authenticated).await;
        if let Err(err) = &result {
            self.record_refusal(paths::INTROSPECT, req, authenticated.as_deref(), err)
                .await;
        }
        result
    }

    /// Sets `authenticated` to the client id once the client has authenticated.
    async fn introspect_inner(
        &self,
        req: &OAuthRequest,
        authenticated: &mut Option<String>,
    ) -> Result<Value, OAuthError> {
        let caller = self.authenticate(&req.credentials).await?;
        *authenticated = Some(caller.client.client_id.clone());
        // Devices never introspect, whatever their registration says.
        if caller.client.kind != ClientKind::Service
            || !caller
                .client
                .scope
                .split(' ')
                .any(|s| s == INTROSPECT_SCOPE)
        {
            return Err(OAuthError::InsufficientScope(
                "introspection needs a client with the introspect scope",
            ));
        }
        let token = req.params.require("token", "token is required")?.to_owned();
        let caller_id = caller.client.client_id.clone();
        if let Some(jti) = &caller.assertion_jti {
            let jti = jti.clone();
            let fresh = self
                .store
                .write(move |tx| {
                    crate::store::replay::remember_jti(
                        tx,
                        &jti.scope,
                        &jti.jti,
                        jti.remember_until_ms,
                    )
                })
                .await?;
            if !fresh {
                return Err(OAuthError::InvalidClient {
                    reason: "the client assertion was used before",
                    basic: false,
                });
            }
        }
        let inactive = json!({ "active": false });
        // The hint is only a hint (RFC 7662 §2.1): try the shape the token has.
        if token.starts_with("pgr_") {
            return Ok(self
                .introspect_refresh(&token, &caller_id)
                .await?
                .unwrap_or(inactive));
        }
        Ok(match self.active_access_token(&token).await? {
            Some(claims) => access_token_response(&claims),
            None => inactive,
        })
    }

    /// The claims of an access token that pairgate issued and that is still active: signature by
    /// a published key, `typ`, issuer, expiry, not revoked, and (for devices) issued in the
    /// device's current token generation, for the tenant it still belongs to, its client enabled.
    pub async fn active_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessClaims>, OAuthError> {
        let now = self.now_ms();
        let Some((jws, kid)) = tokens::parse_access_token(token) else {
            return Ok(None);
        };
        let Some(key) = self.keys.find_key(&kid, now).await? else {
            return Ok(None);
        };
        if !key.verify(&jws) {
            return Ok(None);
        }
        let Ok(claims) = serde_json::from_value::<AccessClaims>(Value::Object(jws.claims)) else {
            return Ok(None);
        };
        if claims.iss != self.issuer || claims.exp.saturating_mul(1000) <= now {
            return Ok(None);
        }
        let jti = claims.jti.clone();
        let device = claims.device.clone();
        let sid = claims.sid.clone();
        let (revoked, state) = self
            .store
            .read(move |tx| {
                let mut revoked = stored::is_access_token_revoked(tx, &jti)?;
                if let Some(family_id) = &sid {
                    // A person's token ends with the sign-in (refresh family) it belongs to.
                    let family = stored::find_family(tx, family_id)?;
                    revoked |= family.is_none_or(|f| f.status != FamilyStatus::Active);
                }
                let state = match &device {
                    Some(serial) => registry::device_token_state(tx, &DeviceSerial::from(serial))?,
                    None => None,
                };
                Ok::<_, crate::store::StoreError>((revoked, state))
            })
            .await?;
        if revoked
            || (claims.device.is_some()
                && !device_token_stands(
                    state.as_ref(),
                    claims.tenant_id.map(TenantId::from),
                    claims.generation,
                ))
        {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    async fn introspect_refresh(
        &self,
        token: &str,
        caller: &str,
    ) -> Result<Option<Value>, OAuthError> {
        let Some(presented) = self.refresh_tokens.parse(token) else {
            return Ok(None);
        };
        let now = self.now_ms();
        let counter = presented.counter();
        let family = self
            .store
            .read(move |tx| rotation::find_family(tx, &presented))
            .await?;
        Ok(family
            .filter(|f| f.status == FamilyStatus::Active)
            // Only the family's current token is active; a used one is not (RFC 7662 §2.2).
            .filter(|f| rotation::standing(counter, f.counter) == Standing::Current)
            .filter(|f| now < f.idle_expires_at && now < f.family_expires_at)
            // A refresh token is only described to the client it belongs to.
            .filter(|f| f.client_id == caller)
            .map(|f| {
                json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "client_id": f.client_id,
                    "sub": f.subject,
                    "scope": f.scope,
                    "iss": self.issuer,
                    "iat": f.issued_at / 1000,
                    "exp": f.idle_expires_at.min(f.family_expires_at) / 1000,
                })
            }))
    }
}

fn access_token_response(c: &AccessClaims) -> Value {
    let mut body = json!({
        "active": true,
        "token_type": c.token_type(),
        "client_id": c.client_id,
        "sub": c.sub,
        "scope": c.scope,
        "iss": c.iss,
        "aud": c.aud,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(cnf) = &c.cnf {
            obj.insert("cnf".into(), json!({ "jkt": cnf.jkt }));
        }
        if let Some(t) = c.tenant_id {
            obj.insert("tenant_id".into(), json!(t));
        }
        if let Some(d) = &c.device {
            obj.insert("device".into(), json!(d));
        }
    }
    body
}
