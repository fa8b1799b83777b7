//! Public JWKs (RFC 7517) for P-256 and Ed25519, validated when parsed, with RFC 7638
//! thumbprints. Weak keys are refused here, so every path that takes a key refuses them.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use serde_json::{Value, json};

use super::{CompactJws, JwsAlg, b64, b64_decode, ed25519, sha256_b64};

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
    /// Ed25519 point of small order or not canonically encoded ([`ed25519::point_is_strong`]).
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
                if !ed25519::point_is_strong(&bytes) {
                    return Err(JwkError::WeakKey);
                }
                ParsedPublicKey::new(&ED25519, &bytes)
            }
        };
        parsed.map(Arc::new).map_err(|_| JwkError::Malformed("x"))
    }
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
}
