//! The claims of a pairgate access token (RFC 9068 §2.2 and pairgate's own), as the issuer
//! writes them and a verifier hands them back.

use serde::{Deserialize, Serialize};

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
    /// A person's token: the sign-in it belongs to at the app (its refresh family). When that
    /// ends (a reused code or refresh token, consent withdrawn, the person disabled), so do the
    /// tokens it issued, at pairgate's APIs and at introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessClaims {
    /// `DPoP` when bound to a key, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}
