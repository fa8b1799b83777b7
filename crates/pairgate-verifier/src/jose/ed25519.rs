//! Ed25519 public keys worth trusting: not of small order, canonically encoded (RFC 8032 §5.1.3).

/// The y coordinates (little-endian, as encoded, sign bit clear) of the eight Ed25519 points of
/// small order: 1 (the identity) and p − 1 (order 2), each with x = 0; 0 (order 4) and the two
/// of order 8, each with x and −x.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    {
        let mut one = [0; 32];
        one[0] = 1;
        one
    },
    {
        let mut p_minus_one = [0xff; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        p_minus_one
    },
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether 32 bytes are an Ed25519 public key worth trusting. A key of small order makes
/// signatures forgeable: with the identity, R = identity and S = 0 verify for every message;
/// with the others, for one message in 2, 4 or 8, which a forger finds by varying a claim. And
/// RFC 8032 §5.1.3 refuses y ≥ p, so that each key has one encoding (and one RFC 7638
/// thumbprint). Whether y lies on the curve at all is left to the signature check, which
/// refuses such a key every time.
pub(super) fn point_is_strong(encoded: &[u8]) -> bool {
    let Ok(mut y) = <[u8; 32]>::try_from(encoded) else {
        return false;
    };
    y[31] &= 0x7f;
    // p = 2^255 - 19: y ≥ p when every bit above the lowest byte is set and that byte ≥ 0xed.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    !non_canonical && !ED25519_SMALL_ORDER_Y.contains(&y)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ED25519, ParsedPublicKey};
    use serde_json::{Value, json};

    use super::super::{JwkError, PublicJwk, b64, b64_decode};

    fn ed25519_jwk(bytes: &[u8]) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(bytes)})
    }

    /// R = the identity, S = 0: `[S]B = R + [k]A` holds for every message when A is the
    /// identity too.
    fn identity_forgery() -> Vec<u8> {
        let mut signature = vec![0u8; 64];
        signature[0] = 1;
        signature
    }

    #[test]
    fn the_identity_key_verifies_a_forged_signature_unless_refused_at_parsing() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        // aws-lc-rs alone takes the key, and the forgery verifies for any message: this is
        // what the check at parsing prevents.
        let raw = ParsedPublicKey::new(&ED25519, identity).unwrap();
        for message in [&b"one message"[..], b"and any other"] {
            assert!(raw.verify_sig(message, &identity_forgery()).is_ok());
        }
        assert_eq!(
            PublicJwk::parse(&ed25519_jwk(&identity)),
            Err(JwkError::WeakKey)
        );
        assert_eq!(b64(identity), "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert!(PublicJwk::from_ed25519(&identity, None).is_none());
    }

    #[test]
    fn every_small_order_ed25519_point_is_refused_in_every_encoding() {
        // p = 2^255 - 19, little-endian.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let add_p = |y: &[u8; 32]| {
            let mut sum = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let s = u16::from(y[i]) + u16::from(p[i]) + carry;
                sum[i] = s as u8;
                carry = s >> 8;
            }
            (carry == 0 && sum[31] & 0x80 == 0).then_some(sum)
        };
        let mut refused = 0;
        // The torsion points from an independent implementation.
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let canonical = point.compress().to_bytes();
            let mut y = canonical;
            y[31] &= 0x7f;
            let mut encodings = vec![canonical];
            // The other sign of x (for x = 0, a non-canonical "negative zero").
            let mut flipped = canonical;
            flipped[31] ^= 0x80;
            encodings.push(flipped);
            // y + p, where it still fits in 255 bits, with either sign.
            if let Some(big) = add_p(&y) {
                let mut negative = big;
                negative[31] |= 0x80;
                encodings.extend([big, negative]);
            }
            for bytes in encodings {
                assert_eq!(
                    PublicJwk::parse(&ed25519_jwk(&bytes)),
                    Err(JwkError::WeakKey),
                    "{}",
                    hex::encode(bytes)
                );
                refused += 1;
            }
        }
        // 8 points with both signs, and y + p with both signs for the three with y < 19: the
        // identity (y = 1) and the two points of order 4 (y = 0).
        assert_eq!(refused, 8 * 2 + 3 * 2);
        // Every other y ≥ p is a non-canonical encoding too, on the curve or not.
        for small in 2u8..19 {
            let mut y = [0u8; 32];
            y[0] = small;
            let big = add_p(&y).unwrap();
            assert_eq!(PublicJwk::parse(&ed25519_jwk(&big)), Err(JwkError::WeakKey));
        }
    }

    #[test]
    fn real_ed25519_keys_are_accepted() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        for _ in 0..64 {
            let doc =
                Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
            let public = pair.public_key().as_ref();
            assert!(PublicJwk::parse(&ed25519_jwk(public)).is_ok());
            assert!(PublicJwk::from_ed25519(public, None).is_some());
        }
        // RFC 8037 appendix A.2.
        let rfc = b64_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert!(PublicJwk::parse(&ed25519_jwk(&rfc)).is_ok());
    }
}
