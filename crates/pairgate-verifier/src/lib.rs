//! Verifying pairgate's access tokens where they are used: at pairgate's own resource servers
//! (telemetry) and at relying apps (dashboards, telemetry consumers, API gateways). It knows no
//! web framework and no database, so a relying app can take it alone.
//!
//! - [`jose`]: public JWKs (P-256, Ed25519) with RFC 7638 thumbprints and weak-key checks, and
//!   compact JWS parsing and verification (RFC 7515, an alg allow-list).
//! - [`dpop`]: RFC 9449 §4.3 proof checks and stateless server nonces (§8).
//! - [`Verifier`]: RFC 9068 §4 access tokens and RFC 9449 §7 DPoP-bound requests, with a cache of
//!   verified tokens. The issuer's keys come from a [`KeySource`]: the issuer's own key ring
//!   in-process, or the issuer's JWKS found through discovery and cached ([`jwks::JwksCache`],
//!   behind the default feature `jwks`). The time comes from a [`Clock`] the caller passes in.
//!
//! Two things need state the caller owns, so they are the caller's: remembering each proof's
//! `jti` (RFC 9449 §11.1; [`Verified::proof`] says what to record and until when), and
//! revocation (pairgate compares the token's `gen` with the device's; a relying app asks the
//! introspection endpoint, RFC 7662).
//!
//! The crate's README shows how a relying app uses it; `examples/relying_app/` in the pairgate
//! repository is a complete one.

mod cache;
pub mod claims;
pub mod clock;
pub mod dpop;
pub mod jose;
#[cfg(feature = "jwks")]
pub mod jwks;
pub mod keys;
mod verifier;

pub use claims::{AccessClaims, Confirmation};
pub use clock::{Clock, SystemClock};
pub use keys::{KeySource, KeysUnavailable};
pub use verifier::{ResourceRequest, Verified, Verifier, VerifierConfig, VerifyError};
