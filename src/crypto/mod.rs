//! The cryptography beneath every domain module: the master key and the purpose-specific keys
//! derived from it (`master_key`), authenticated encryption of secrets at rest (`sealing`), and
//! random tokens with the one way opaque secrets are stored (`tokens`), and JOSE (`jose`: JWS,
//! JWK), which is the verifier crate's, so pairgate signs and verifies with the code relying apps
//! use. It knows nothing of the domain above it.

pub use pairgate_verifier::jose;
pub mod master_key;
pub mod sealing;
pub mod tokens;
