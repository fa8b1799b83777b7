//! The OAuth error vocabulary. Each variant names the RFC section that defines it; `code()` is the
//! wire `error` value and `description()` a fixed, safe `error_description`. Internal detail
//! (store failures) is logged by the HTTP layer, never serialised.

use crate::store::{StoreError, StoreFailure};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2: missing, repeated or malformed parameter.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6749 §5.2: client authentication failed. `basic` says whether the client tried HTTP
    /// Basic, which makes the answer a 401 with `WWW-Authenticate` (RFC 6749 §5.2).
    #[error("invalid_client: {reason}")]
    InvalidClient { reason: &'static str, basic: bool },
    /// RFC 6749 §5.2: the grant (device code, refresh token) is invalid, expired or revoked.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// RFC 6749 §5.2: this client may not use this grant type.
    #[error("unauthorized_client")]
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope exceeds what the client may have.
    #[error("invalid_scope")]
    InvalidScope,
    /// RFC 6750 §3.1 `insufficient_scope`, answered 403: the client authenticated, but its
    /// registered scope does not allow this endpoint (introspection: RFC 7662 §2.1, §4). Not
    /// 401, which would tell it that its credentials are wrong.
    #[error("insufficient_scope: {0}")]
    InsufficientScope(&'static str),
    /// RFC 8628 §3.5: the user has not yet decided.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval has grown by 5 seconds.
    #[error("slow_down")]
    SlowDown,
    /// RFC 8628 §3.5: the user denied the request.
    #[error("access_denied")]
    AccessDenied,
    /// RFC 8628 §3.5: the device_code expired.
    #[error("expired_token")]
    ExpiredToken,
    /// RFC 9449 §4.3, §5: the DPoP proof is missing or fails a check.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §8: a server nonce is required; the response carries a fresh `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseDpopNonce,
    /// Too many requests from this device or address (RFC 6585 429, with `Retry-After`).
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// The database is unreachable: 503 with `Retry-After`.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A bug or broken invariant; logged, answered as `server_error`.
    #[error("internal: {0}")]
    Internal(String),
}

impl OAuthError {
    /// The `error` member of the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown | Self::RateLimited { .. } => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::Store(e) if e.is_unavailable() => "temporarily_unavailable",
            Self::Store(_) | Self::Internal(_) => "server_error",
        }
    }

    /// A fixed, client-safe `error_description`.
    pub fn description(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::InvalidDpopProof(d)
            | Self::InsufficientScope(d) => Some(d),
            Self::InvalidClient { reason, .. } => Some(reason),
            Self::UnauthorizedClient => Some("this client may not use this grant type"),
            Self::InvalidScope => Some("the requested scope is not allowed for this client"),
            Self::SlowDown => {
                Some("polling too fast; the interval has been increased by 5 seconds")
            }
            Self::RateLimited { .. } => Some("too many requests; retry later"),
            Self::UseDpopNonce => Some("a DPoP nonce is required; use the DPoP-Nonce header"),
            _ => None,
        }
    }
}

impl StoreFailure for OAuthError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}
