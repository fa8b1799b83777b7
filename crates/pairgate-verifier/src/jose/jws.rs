//! Compact JWS (RFC 7515 §7.1) parsing: three base64url segments, JSON objects for the header and
//! the claims, an allowed `alg`, no `crit`. Parsing verifies nothing; [`PublicJwk::verify`] does.
//!
//! [`PublicJwk::verify`]: super::PublicJwk::verify

use serde_json::{Map, Value};

use super::{JwsAlg, b64_decode};

/// Why a compact JWS was refused. Callers map these to their own protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("unsupported alg")]
    UnsupportedAlg,
    #[error("critical header parameters are not supported")]
    Critical,
}

/// A compact JWS, parsed but not yet verified.
#[derive(Debug)]
pub struct CompactJws {
    pub alg: JwsAlg,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub(super) signing_input: String,
    pub(super) signature: Vec<u8>,
}

/// Longest token accepted, before any decoding (a proof with an embedded JWK is well under 1 KiB).
pub const MAX_JWS_LEN: usize = 8192;

impl CompactJws {
    pub fn parse(token: &str) -> Result<Self, JwsError> {
        if token.len() > MAX_JWS_LEN {
            return Err(JwsError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        let object = |part: &str| -> Result<Map<String, Value>, JwsError> {
            let bytes = b64_decode(part).ok_or(JwsError::Malformed)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(JwsError::Malformed),
            }
        };
        let header = object(h)?;
        let claims = object(c)?;
        let signature = b64_decode(s)
            .filter(|sig| !sig.is_empty())
            .ok_or(JwsError::Malformed)?;
        if header.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwsAlg::parse)
            .ok_or(JwsError::UnsupportedAlg)?;
        Ok(Self {
            alg,
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim, in whole seconds (fractions are truncated).
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value
            .as_i64()
            .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::b64;

    #[test]
    fn compact_jws_refuses_none_and_crit() {
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        assert!(CompactJws::parse(&none).is_err());
        let hs = format!("{}.{}.{}", b64(r#"{"alg":"HS256"}"#), b64("{}"), b64("sig"));
        assert_eq!(
            CompactJws::parse(&hs).unwrap_err(),
            JwsError::UnsupportedAlg
        );
        let crit = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256","crit":["x"]}"#),
            b64("{}"),
            b64("sig")
        );
        assert_eq!(CompactJws::parse(&crit).unwrap_err(), JwsError::Critical);
    }
}
