//! Authenticated encryption of small secrets at rest (signing keys, TOTP secrets): AES-256-GCM
//! under a key derived from the master key for one purpose, with the row's identity as associated
//! data so a sealed value cannot be moved to another row.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Seals and opens secrets with one key.
pub struct SecretBox(LessSafeKey);

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        // AES-256-GCM accepts any 32-byte key, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, &key).unwrap_or_else(|_| unreachable!());
        Self(LessSafeKey::new(unbound))
    }

    /// `base64(nonce || ciphertext || tag)`; `aad` binds the value to its owner.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Option<String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut buffer = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend(buffer);
        Some(STANDARD.encode(out))
    }

    /// The plaintext, or `None` if the value was tampered with, moved, or sealed by another key.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let raw = STANDARD.decode(sealed).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_owner() {
        let a = SecretBox::new([1; 32]);
        let sealed = a.seal(b"user:1", b"secret").unwrap();
        assert_eq!(a.open(b"user:1", &sealed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(a.open(b"user:2", &sealed), None);
        assert_eq!(SecretBox::new([2; 32]).open(b"user:1", &sealed), None);
    }
}
