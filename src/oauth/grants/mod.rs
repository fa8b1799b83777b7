//! One module per grant type of the token endpoint.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use super::OAuthError;
use super::keyring::KeyRingError;
use crate::store::StoreError;

/// Signing inside a transaction closure: a failure rolls the transaction back.
pub(super) fn signing_failed(err: KeyRingError) -> StoreError {
    match err {
        KeyRingError::Store(e) => e,
        other => StoreError::Other(format!("signing: {other}")),
    }
}

/// A grant's refusal that the transaction still commits (jti records, counters, revocations).
pub(super) type Committed<T> = Result<Result<T, OAuthError>, StoreError>;
