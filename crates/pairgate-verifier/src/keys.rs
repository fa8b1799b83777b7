//! Where a [`Verifier`](crate::Verifier) finds the issuer's signing keys: a [`KeySource`]. The
//! issuer itself implements it over its own key ring (in-process: no HTTP round trip, the same
//! keys it publishes); a relying app uses the issuer's published JWKS ([`crate::jwks::JwksCache`]).
//! Every source goes through the same checks.

use std::future::Future;
use std::pin::Pin;

use crate::jose::PublicJwk;

/// The keys could not be read (the issuer is unreachable, its key store is down): the request
/// should be answered with "try again later", not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the issuer's signing keys are unavailable")]
pub struct KeysUnavailable;

/// What [`KeySource::key`] returns.
pub type KeyLookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<PublicJwk>, KeysUnavailable>> + Send + 'a>>;

/// A source of the issuer's public signing keys, by `kid`.
pub trait KeySource: Send + Sync {
    /// The key named `kid`, usable for verification at `now_ms` (Unix milliseconds); `Ok(None)`
    /// when the issuer does not publish such a key. A source may look further (read its store
    /// again, fetch the JWKS) for a `kid` it does not hold yet: the issuer may just have rotated.
    fn key<'a>(&'a self, kid: &'a str, now_ms: i64) -> KeyLookup<'a>;
}
