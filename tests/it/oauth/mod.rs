//! The OAuth surface, grant by grant, against the real server.

mod client_auth;
mod clock_recovery;
mod device_flow;
pub mod discovery;
mod dpop;
mod introspection;
mod key_rotation;
mod openapi;
pub mod refresh;
mod refresh_grace;
mod service_clients;
mod third_party;
pub mod weak_keys;
mod wire;

use serde_json::Value;

/// The `error` of an OAuth error response, after checking the status and no-store.
pub async fn error_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status, "unexpected status");
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

/// The `Date` of a response, in Unix seconds.
pub fn server_date(res: &reqwest::Response) -> i64 {
    let date = res.headers()["date"].to_str().unwrap();
    chrono::DateTime::parse_from_rfc2822(date)
        .unwrap()
        .timestamp()
}
