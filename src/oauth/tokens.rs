//! What pairgate issues: RFC 9068 access tokens (JWT, `typ: at+jwt`) and device codes (random,
//! stored only as SHA-256 hashes). Refresh tokens are `rotation`'s.

use serde::{Deserialize, Serialize};

use super::jose::CompactJws;
use crate::store::registry::DeviceTokenState;

/// The one scope a device may hold: uploading its own telemetry.
pub const DEVICE_SCOPE: &str = "telemetry:write";

/// `cnf` (RFC 7800 §3.1, RFC 9449 §6.1): the thumbprint of the key the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// Access-token claims (RFC 9068 §2.2) plus pairgate's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// `device:<serial>` for devices, `client:<client_id>` for service clients.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The tenant the device is paired to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<i64>,
    /// The device's serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The device's token generation at issue; a later revocation moves the device past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "gen")]
    pub generation: Option<i64>,
}

impl AccessClaims {
    /// `DPoP` when bound to a key, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// Whether a device's token, issued for `tenant_id` in `generation`, still stands against the
/// device as it is now (`state`, `None` if the device is gone): the device still belongs to that
/// tenant, has not moved past that generation (unpaired, re-keyed, paired again, its tokens
/// revoked), and its client is enabled. Every place that accepts a device's access or refresh
/// token asks this, so a token ends everywhere at once.
pub fn device_token_stands(
    state: Option<&DeviceTokenState>,
    tenant_id: Option<i64>,
    generation: Option<i64>,
) -> bool {
    state.is_some_and(|s| {
        s.active
            && s.tenant_id.is_some()
            && s.tenant_id == tenant_id
            && Some(s.token_generation) == generation
    })
}

/// Parses an access token far enough to look up its key: `Some` only for a JWS with
/// `typ: at+jwt` and a `kid`.
pub fn parse_access_token(token: &str) -> Option<(CompactJws, String)> {
    let jws = CompactJws::parse(token).ok()?;
    if jws.header_str("typ") != Some("at+jwt") {
        return None;
    }
    let kid = jws.header_str("kid")?.to_owned();
    Some((jws, kid))
}
