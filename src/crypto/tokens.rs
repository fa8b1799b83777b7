//! Random tokens (session ids, device codes, invitation and client secrets, token ids) and how
//! opaque secrets are stored: only their SHA-256, so a copy of the database holds no usable one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The text form of a token's bytes (random values, MAC tags): base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    encode(rand::random::<[u8; 32]>())
}

/// A token id (`jti`) or family id: 128 random bits.
pub fn new_id() -> String {
    encode(rand::random::<[u8; 16]>())
}

/// How opaque secrets are stored: SHA-256, base64url.
pub fn hash_token(token: &str) -> String {
    encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_their_sha256() {
        assert_eq!(random_token().len(), 43);
        assert_eq!(new_id().len(), 22);
        assert_ne!(random_token(), random_token());
        // SHA-256("abc"), FIPS 180-2 appendix B.1, in base64url.
        assert_eq!(
            hash_token("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
