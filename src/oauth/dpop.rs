//! pairgate's DPoP (RFC 9449) as its settings configure it: the proof checks themselves are the
//! verifier crate's ([`crate::verifier::dpop`]); this is the policy the `[oauth]` settings
//! describe, shared by the token endpoint and the resource servers; the crate's refusals in
//! the OAuth error vocabulary; and the authorization server's own proof checks and nonces.

use super::{OAuth, OAuthError, OAuthRequest};
use crate::config::OAuthSettings;
use crate::verifier::dpop::{DpopError, DpopPolicy, DpopProof, DpopRequest};

/// The policy pairgate's settings describe.
pub fn policy(settings: &OAuthSettings) -> DpopPolicy {
    DpopPolicy {
        require_nonce: settings.dpop_require_nonce,
        nonce_lifetime_ms: i64::from(settings.dpop_nonce_lifetime_secs.get()) * 1000,
        max_age_ms: i64::from(settings.dpop_proof_max_age_secs.get()) * 1000,
        skew_ms: i64::from(settings.clock_skew_secs) * 1000,
    }
}

impl From<DpopError> for OAuthError {
    fn from(err: DpopError) -> Self {
        match err {
            DpopError::Invalid(description) => Self::InvalidDpopProof(description),
            DpopError::UseNonce => Self::UseDpopNonce,
        }
    }
}

impl OAuth {
    /// A fresh nonce for the `DPoP-Nonce` header of every response, when nonces are required.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.required_nonce(self.now_ms())
    }

    /// A fresh nonce for a `use_dpop_nonce` answer (RFC 9449 §8), required or not.
    pub fn fresh_dpop_nonce(&self) -> String {
        self.dpop.nonce(self.now_ms())
    }

    /// Checks a request's DPoP proof against `path` and `method` (the jti is recorded later).
    pub(super) fn check_dpop(
        &self,
        req: &OAuthRequest,
        method: &str,
        path: &str,
    ) -> Result<Option<DpopProof>, OAuthError> {
        let url = self.url(path);
        self.dpop
            .check(
                &DpopRequest {
                    proofs: &req.dpop,
                    method,
                    url: &url,
                    access_token: None,
                },
                self.now_ms(),
            )
            .map_err(OAuthError::from)
    }

    /// [`Self::check_dpop`] for `POST path`, run before the client is authenticated. A proof
    /// that needs a nonce is the early answer (the outer `Err`), so a device whose clock is
    /// wrong learns so, from `use_dpop_nonce` and the answer's `Date`, rather than from an
    /// `invalid_client` about its assertion's times. Any other verdict on the proof comes back
    /// inside, for the caller to give after the client's own.
    pub(super) fn check_dpop_before_client(
        &self,
        req: &OAuthRequest,
        path: &str,
    ) -> Result<Result<Option<DpopProof>, OAuthError>, OAuthError> {
        match self.check_dpop(req, "POST", path) {
            Err(OAuthError::UseDpopNonce) => Err(OAuthError::UseDpopNonce),
            verdict => Ok(verdict),
        }
    }
}
