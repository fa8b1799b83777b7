//! pairgate: an OAuth 2.0 identity provider that pairs IoT devices with the right customer tenant.
//!
//! Dependencies point one way: [`http`] → domain → [`store`]. See ARCHITECTURE.md for the map.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod devices;
pub mod erp;
pub mod events;
pub mod http;
pub mod ids;
pub mod logging;
pub mod mail;
pub mod maintenance;
pub mod meters;
pub mod oauth;
pub mod pairing;
pub mod simulator;
pub mod store;
pub mod telemetry;
/// Token verification (JOSE, DPoP, the `Verifier`): its own crate, free of actix, diesel and
/// SQLite, which relying apps use alone.
pub use pairgate_verifier as verifier;
