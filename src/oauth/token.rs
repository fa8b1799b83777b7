//! `POST /oauth/token` (RFC 6749 §3.2): parse the grant type, authenticate the client, check the
//! DPoP proof, dispatch to the grant. Each grant lives in `grants/`.

use std::sync::Arc;

use serde::Serialize;

use super::keyring::{KeyRing, KeyRingError};
use super::rotation::RefreshTokens;
use super::tokens;
use super::{OAuth, OAuthError, OAuthRequest, grants, paths};
use crate::verifier::{AccessClaims, Confirmation};

/// RFC 8628 §3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The successful response (RFC 6749 §5.1, RFC 9449 §5).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `DPoP` for key-bound tokens, `Bearer` otherwise.
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

enum Grant {
    DeviceCode,
    RefreshToken,
    ClientCredentials,
}

impl OAuth {
    pub async fn token(&self, req: &OAuthRequest) -> Result<TokenResponse, OAuthError> {
        let mut authenticated = None;
        let result = self.token_inner(req, &mut authenticated).await;
        if let Err(err) = &result {
            self.forget_refused_client(req, err);
            self.record_refusal(paths::TOKEN, req, authenticated.as_deref(), err)
                .await;
        }
        result
    }

    /// Sets `authenticated` to the client id once the client has authenticated.
    async fn token_inner(
        &self,
        req: &OAuthRequest,
        authenticated: &mut Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = match req.params.require("grant_type", "grant_type is required")? {
            DEVICE_CODE_GRANT => Grant::DeviceCode,
            "refresh_token" => Grant::RefreshToken,
            "client_credentials" => Grant::ClientCredentials,
            _ => return Err(OAuthError::UnsupportedGrantType),
        };
        let proof = self.check_dpop_before_client(req, paths::TOKEN)?;
        let client = self.authenticate_cached(&req.credentials).await?;
        *authenticated = Some(client.client.client_id.clone());
        let proof = proof?;
        match grant {
            Grant::DeviceCode => grants::device_code::exchange(self, req, client, proof).await,
            Grant::RefreshToken => grants::refresh_token::exchange(self, req, client, proof).await,
            Grant::ClientCredentials => {
                grants::client_credentials::exchange(self, req, client, proof).await
            }
        }
    }

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
    pub tenant_id: Option<i64>,
    pub device: Option<String>,
    pub generation: Option<i64>,
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
            tenant_id: who.tenant_id,
            device: who.device,
            generation: who.generation,
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
        }
    }
}
