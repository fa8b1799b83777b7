//! The OAuth surface, grant by grant, against the real server.

mod client_auth;
mod device_flow;
pub mod discovery;
mod dpop;
mod introspection;
mod key_rotation;
pub mod refresh;
mod service_clients;
mod third_party;
mod wire;

use serde_json::Value;

/// The `error` of an OAuth error response, after checking the status and no-store.
pub async fn error_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status, "unexpected status");
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}
