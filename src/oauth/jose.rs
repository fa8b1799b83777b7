//! The JOSE pieces pairgate needs, and only those: public JWKs for P-256 (ES256) and Ed25519
//! (EdDSA) with RFC 7638 thumbprints, and compact JWS parsing and verification (RFC 7515) with an
//! algorithm allow-list. Signatures are checked by aws-lc-rs (chosen on measured figures: see
//! benches/crypto_backends.rs and the README) against a key parsed and validated once, when the
//! JWK is. pairgate's own tokens are signed in `keyring.rs`, with key pairs parsed once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Base64url without padding, as JOSE uses it (padding is refused).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

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

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("the JWK is not a JSON object")]
    NotAnObject,
    #[error("the JWK contains private key material")]
    PrivateMaterial,
    #[error("unsupported key type or curve (use EC P-256 or OKP Ed25519)")]
    Unsupported,
    #[error("the JWK member {0} is missing or malformed")]
    Malformed(&'static str),
    #[error("the key's alg does not match its type")]
    AlgMismatch,
    /// An Ed25519 point of small order (it verifies forged signatures) or one not canonically
    /// encoded (RFC 8032 §5.1.3).
    #[error("the key is a weak point: small order or not canonically encoded")]
    WeakKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    P256 { x: String, y: String },
    Ed25519 { x: String },
}

/// A validated public key in JWK form.
#[derive(Debug, Clone)]
pub struct PublicJwk {
    material: KeyMaterial,
    kid: Option<String>,
    /// The key as aws-lc-rs checks signatures with it: parsed (and the point checked to be on
    /// the curve) once, not at every signature.
    verifier: Arc<ParsedPublicKey>,
}

impl PartialEq for PublicJwk {
    fn eq(&self, other: &Self) -> bool {
        self.material == other.material && self.kid == other.kid
    }
}

impl Eq for PublicJwk {}

impl KeyMaterial {
    /// Parses the key for verification, refusing what is not a valid key of its type: a P-256
    /// point off the curve or with a coordinate of p or more (aws-lc-rs checks both), an
    /// Ed25519 point of small order or not canonically encoded ([`ed25519_point_is_strong`]).
    fn verifier(&self) -> Result<Arc<ParsedPublicKey>, JwkError> {
        let parsed = match self {
            Self::P256 { x, y } => {
                let mut point = vec![4u8];
                point.extend(b64_decode(x).ok_or(JwkError::Malformed("x"))?);
                point.extend(b64_decode(y).ok_or(JwkError::Malformed("y"))?);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            }
            Self::Ed25519 { x } => {
                let bytes = b64_decode(x).ok_or(JwkError::Malformed("x"))?;
                if !ed25519_point_is_strong(&bytes) {
                    return Err(JwkError::WeakKey);
                }
                ParsedPublicKey::new(&ED25519, &bytes)
            }
        };
        parsed.map(Arc::new).map_err(|_| JwkError::Malformed("x"))
    }
}

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
fn ed25519_point_is_strong(encoded: &[u8]) -> bool {
    let Ok(mut y) = <[u8; 32]>::try_from(encoded) else {
        return false;
    };
    y[31] &= 0x7f;
    // p = 2^255 - 19: y ≥ p when every bit above the lowest byte is set and that byte ≥ 0xed.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    !non_canonical && !ED25519_SMALL_ORDER_Y.contains(&y)
}

impl PublicJwk {
    /// Parses and validates a public JWK; private members are an error, not silently dropped.
    pub fn parse(value: &Value) -> Result<Self, JwkError> {
        let obj = value.as_object().ok_or(JwkError::NotAnObject)?;
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            if obj.contains_key(private) {
                return Err(JwkError::PrivateMaterial);
            }
        }
        let text = |name: &'static str| -> Result<&str, JwkError> {
            obj.get(name)
                .and_then(Value::as_str)
                .ok_or(JwkError::Malformed(name))
        };
        let coordinate = |name: &'static str| -> Result<String, JwkError> {
            let raw = text(name)?;
            match b64_decode(raw) {
                Some(bytes) if bytes.len() == 32 => Ok(raw.to_owned()),
                _ => Err(JwkError::Malformed(name)),
            }
        };
        let material = match (text("kty")?, obj.get("crv").and_then(Value::as_str)) {
            ("EC", Some("P-256")) => KeyMaterial::P256 {
                x: coordinate("x")?,
                y: coordinate("y")?,
            },
            ("OKP", Some("Ed25519")) => KeyMaterial::Ed25519 {
                x: coordinate("x")?,
            },
            _ => return Err(JwkError::Unsupported),
        };
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 128 => Some(kid.clone()),
            Some(_) => return Err(JwkError::Malformed("kid")),
        };
        // Weak points and points off the curve are refused now, not at the first signature.
        let verifier = material.verifier()?;
        let jwk = Self {
            material,
            kid,
            verifier,
        };
        if let Some(alg) = obj.get("alg")
            && alg.as_str().and_then(JwsAlg::parse) != Some(jwk.alg())
        {
            return Err(JwkError::AlgMismatch);
        }
        Ok(jwk)
    }

    /// A P-256 key from its uncompressed SEC1 point (0x04 || x || y).
    pub fn from_p256_point(point: &[u8], kid: Option<String>) -> Option<Self> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let material = KeyMaterial::P256 {
            x: b64(&point[1..33]),
            y: b64(&point[33..65]),
        };
        Some(Self {
            verifier: material.verifier().ok()?,
            material,
            kid,
        })
    }

    /// An Ed25519 key from its 32 public bytes.
    pub fn from_ed25519(public: &[u8], kid: Option<String>) -> Option<Self> {
        if public.len() != 32 {
            return None;
        }
        let material = KeyMaterial::Ed25519 { x: b64(public) };
        Some(Self {
            verifier: material.verifier().ok()?,
            material,
            kid,
        })
    }

    pub fn alg(&self) -> JwsAlg {
        match self.material {
            KeyMaterial::P256 { .. } => JwsAlg::ES256,
            KeyMaterial::Ed25519 { .. } => JwsAlg::EdDSA,
        }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// RFC 7638 thumbprint (SHA-256, base64url) over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.material {
            KeyMaterial::P256 { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            KeyMaterial::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        sha256_b64(canonical)
    }

    /// The public members (and `kid` when set), as published.
    pub fn to_json(&self) -> Value {
        let mut obj = match &self.material {
            KeyMaterial::P256 { x, y } => json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            KeyMaterial::Ed25519 { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        };
        if let (Some(kid), Some(map)) = (&self.kid, obj.as_object_mut()) {
            map.insert("kid".into(), Value::String(kid.clone()));
        }
        obj
    }

    /// Verifies a compact JWS's signature with this key (ES256: the raw 64-byte r || s of
    /// RFC 7518 §3.4; EdDSA: RFC 8037).
    pub fn verify(&self, jws: &CompactJws) -> bool {
        if jws.alg != self.alg() {
            return false;
        }
        self.verifier
            .verify_sig(jws.signing_input.as_bytes(), &jws.signature)
            .is_ok()
    }
}

/// Parses a JWK Set (`{"keys": [...]}`), refusing the whole set if any key is bad.
pub fn parse_jwk_set(value: &Value) -> Result<Vec<PublicJwk>, JwkError> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwkError::Malformed("keys"))?;
    if keys.is_empty() {
        return Err(JwkError::Malformed("keys"));
    }
    keys.iter().map(PublicJwk::parse).collect()
}

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
    signing_input: String,
    signature: Vec<u8>,
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

    #[test]
    fn a_p256_point_off_the_curve_is_refused_when_parsed() {
        // Coordinates of the right length, but (1, 1) does not satisfy y² = x³ - 3x + b.
        let mut one = [0u8; 32];
        one[31] = 1;
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(one), "y": b64(one)});
        assert_eq!(PublicJwk::parse(&jwk), Err(JwkError::Malformed("x")));
        let mut point = vec![4u8];
        point.extend(one);
        point.extend(one);
        assert!(PublicJwk::from_p256_point(&point, None).is_none());
    }

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

    #[test]
    fn p256_coordinates_must_be_in_range_and_full_length() {
        let hex32 = |h: &str| -> Vec<u8> { hex::decode(h).unwrap() };
        // (5, y) is on the curve; x + p names the same point with an out-of-range coordinate.
        let x = hex32("0000000000000000000000000000000000000000000000000000000000000005");
        let x_plus_p = hex32("ffffffff00000001000000000000000000000001000000000000000000000004");
        let y = hex32("459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc");
        let jwk =
            |x: &[u8], y: &[u8]| json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
        assert!(PublicJwk::parse(&jwk(&x, &y)).is_ok());
        assert_eq!(
            PublicJwk::parse(&jwk(&x_plus_p, &y)),
            Err(JwkError::Malformed("x"))
        );
        // p itself, as y, with the same x.
        let p = hex32("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
        assert!(PublicJwk::parse(&jwk(&x, &p)).is_err());
        // (0, 0) is what some encoders write for the point at infinity; it is not on the curve.
        assert!(PublicJwk::parse(&jwk(&[0; 32], &[0; 32])).is_err());
        // RFC 7518 §6.2.1.2: full-length coordinates, no leading zeros dropped, none added.
        assert_eq!(
            PublicJwk::parse(&jwk(&x[1..], &y)),
            Err(JwkError::Malformed("x"))
        );
        let mut long_y = vec![0u8];
        long_y.extend(&y);
        assert_eq!(
            PublicJwk::parse(&jwk(&x, &long_y)),
            Err(JwkError::Malformed("y"))
        );
        // SEC1's encoding of the point at infinity, and compressed points, are not keys here.
        assert!(PublicJwk::from_p256_point(&[0], None).is_none());
        let mut compressed = vec![2u8];
        compressed.extend(&x);
        assert!(PublicJwk::from_p256_point(&compressed, None).is_none());
    }

    #[test]
    fn rfc7638_example_style_thumbprint_is_stable_and_ignores_kid() {
        let a = PublicJwk::parse(&json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "one"
        }))
        .unwrap();
        let b = PublicJwk::parse(&json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        assert_eq!(a.thumbprint(), b.thumbprint());
        // RFC 8037 appendix A.3 gives this thumbprint for that key.
        assert_eq!(
            a.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn private_and_unsupported_keys_are_refused() {
        let private = json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
        assert_eq!(PublicJwk::parse(&private), Err(JwkError::PrivateMaterial));
        let rsa = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert_eq!(PublicJwk::parse(&rsa), Err(JwkError::Unsupported));
        let off_curve = json!({"kty": "EC", "crv": "P-256",
            "x": b64([1u8; 32]), "y": b64([2u8; 32])});
        assert!(PublicJwk::parse(&off_curve).is_err());
    }

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
