//! `POST /oauth/token` (RFC 6749 §3.2): parse the grant type, authenticate the client, check the
//! DPoP proof, dispatch to the grant. Each grant lives in `grants/`; what they mint, in `minting`.

use super::minting::TokenResponse;
use super::{OAuth, OAuthError, OAuthRequest, grants, paths};
use crate::meters::Meters;

/// RFC 8628 §3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Counts the token endpoint's refusals that `/metrics` shows apart.
fn count_refusal(meters: &Meters, err: &OAuthError) {
    match err {
        OAuthError::SlowDown => meters.slow_down.increment(1),
        OAuthError::InvalidGrant(reason)
            if *reason == grants::refresh_token::REUSED
                || *reason == grants::authorization_code::REUSED =>
        {
            meters.refresh_reuse.increment(1);
        }
        _ => {}
    }
}

enum Grant {
    AuthorizationCode,
    DeviceCode,
    RefreshToken,
    ClientCredentials,
}

impl OAuth {
    pub async fn token(&self, req: &OAuthRequest) -> Result<TokenResponse, OAuthError> {
        let mut authenticated = None;
        let result = self.token_inner(req, &mut authenticated).await;
        if let Err(err) = &result {
            count_refusal(self.store.meters(), err);
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
            "authorization_code" => Grant::AuthorizationCode,
            "client_credentials" => Grant::ClientCredentials,
            _ => return Err(OAuthError::UnsupportedGrantType),
        };
        let proof = self.check_dpop_before_client(req, paths::TOKEN)?;
        let client = self.authenticate_cached(&req.credentials).await?;
        *authenticated = Some(client.client.client_id.clone());
        let proof = proof?;
        match grant {
            Grant::AuthorizationCode => {
                grants::authorization_code::exchange(self, req, client, proof).await
            }
            Grant::DeviceCode => grants::device_code::exchange(self, req, client, proof).await,
            Grant::RefreshToken => grants::refresh_token::exchange(self, req, client, proof).await,
            Grant::ClientCredentials => {
                grants::client_credentials::exchange(self, req, client, proof).await
            }
        }
    }
}
