//! What the grants mint inside their transactions: RFC 9068 access tokens signed by the key
//! ring, refresh tokens of a family, and the token endpoint's success response.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::OAuth;
use super::keyring::{KeyRing, KeyRingError};
use super::rotation::RefreshTokens;
use crate::crypto::tokens;
use crate::ids::TenantId;
use crate::verifier::{AccessClaims, Confirmation};

/// The successful response (RFC 6749 §5.1, RFC 9449 §5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (RFC 9068).
    pub access_token: String,
    /// `DPoP` for key-bound tokens, `Bearer` otherwise.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// With the device_code and refresh_token grants: the next refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// With the authorization_code grant and the `openid` scope: the OpenID Connect ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id_token: Option<String>,
}

impl OAuth {
    /// What grants need to mint access tokens inside their transactions.
    pub(super) fn minter(&self) -> Minter {
        Minter {
            keys: Arc::clone(&self.keys),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            lifetime_secs: u64::from(self.settings.oauth.access_token_lifetime_secs.get()),
            refresh: Arc::clone(&self.refresh_tokens),
        }
    }
}

/// Mints signed access tokens and refresh tokens; cheap to clone into a transaction closure.
#[derive(Clone)]
pub(super) struct Minter {
    keys: Arc<KeyRing>,
    issuer: String,
    audience: String,
    pub lifetime_secs: u64,
    refresh: Arc<RefreshTokens>,
}

/// Who a token is for.
pub(super) struct Grantee {
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub jkt: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub device: Option<String>,
    pub generation: Option<i64>,
    /// A person's refresh family, named in their access tokens (`sid`).
    pub family: Option<String>,
}

impl Minter {
    pub fn access_token(
        &self,
        who: Grantee,
        now_ms: i64,
    ) -> Result<(String, AccessClaims), KeyRingError> {
        let iat = now_ms.div_euclid(1000);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: who.sub,
            aud: self.audience.clone(),
            exp: iat + i64::try_from(self.lifetime_secs).unwrap_or(600),
            iat,
            jti: tokens::new_id(),
            client_id: who.client_id,
            scope: who.scope,
            cnf: who.jkt.map(|jkt| Confirmation { jkt }),
            tenant_id: who.tenant_id.map(TenantId::get),
            device: who.device,
            generation: who.generation,
            sid: who.family,
        };
        let jwt = self.keys.sign("at+jwt", &claims, now_ms)?;
        Ok((jwt, claims))
    }

    /// The refresh token of `family_id` at `counter`.
    pub fn refresh_token(&self, family_id: &str, counter: i64) -> String {
        self.refresh.mint(family_id, counter)
    }

    pub fn response(
        &self,
        jwt: String,
        claims: &AccessClaims,
        refresh_token: Option<String>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: jwt,
            token_type: claims.token_type(),
            expires_in: self.lifetime_secs,
            refresh_token,
            scope: claims.scope.clone(),
            id_token: None,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs other JWTs with the key ring (ID tokens).
    pub fn sign<T: serde::Serialize>(
        &self,
        typ: &str,
        claims: &T,
        now_ms: i64,
    ) -> Result<String, KeyRingError> {
        self.keys.sign(typ, claims, now_ms)
    }
}
