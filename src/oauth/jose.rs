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
    /// Parses the key for verification; `None` when it is not a valid key of its type.
    fn verifier(&self) -> Option<Arc<ParsedPublicKey>> {
        let parsed = match self {
            Self::P256 { x, y } => {
                let mut point = vec![4u8];
                point.extend(b64_decode(x)?);
                point.extend(b64_decode(y)?);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            }
            Self::Ed25519 { x } => ParsedPublicKey::new(&ED25519, &b64_decode(x)?),
        };
        parsed.ok().map(Arc::new)
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
        // Points that are not on the curve are refused now, not at the first signature.
        let verifier = material.verifier().ok_or(JwkError::Malformed("x"))?;
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
            verifier: material.verifier()?,
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
            verifier: material.verifier()?,
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
