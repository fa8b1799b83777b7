//! pairgate's DPoP (RFC 9449) as its settings configure it: the proof checks themselves are the
//! verifier crate's ([`crate::verifier::dpop`]); this is the policy the `[oauth]` settings
//! describe, shared by the token endpoint and the resource servers, and the crate's refusals in
//! the OAuth error vocabulary.

use super::OAuthError;
use crate::config::OAuthSettings;
use crate::verifier::dpop::{DpopError, DpopPolicy};

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
