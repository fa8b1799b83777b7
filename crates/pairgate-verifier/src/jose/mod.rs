//! The JOSE pieces pairgate needs, and only those: public JWKs for P-256 (ES256) and Ed25519
//! (EdDSA) with RFC 7638 thumbprints ([`PublicJwk`]), and compact JWS parsing and verification
//! (RFC 7515) with an algorithm allow-list ([`CompactJws`]). Signatures are checked by aws-lc-rs
//! (chosen on measured figures: see pairgate's benches/crypto_backends.rs and
//! docs/decisions/jose-on-aws-lc-rs.md) against a key parsed and validated once, when the JWK is.
//! Signing is the issuer's business: pairgate's key ring signs with key pairs of its own.

mod ed25519;
mod jwk;
mod jws;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use jwk::{JwkError, PublicJwk, parse_jwk_set};
pub use jws::{CompactJws, JwsError, MAX_JWS_LEN};

/// Base64url without padding, as JOSE uses it (padding is refused).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` for anything else (padding, other alphabets, stray
/// trailing bits).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// SHA-256, base64url: RFC 7638 thumbprints, DPoP `ath`, hashed codes.
pub fn sha256_b64(data: impl AsRef<[u8]>) -> String {
    b64(Sha256::digest(data.as_ref()))
}

/// The signature algorithms pairgate accepts and issues. `none`, HMAC and RSA are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    ES256,
    EdDSA,
}

impl JwsAlg {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn all() -> [&'static str; 2] {
        ["ES256", "EdDSA"]
    }
}
