//! What a device does on the wire, as firmware would: hold a factory key, authenticate with
//! private_key_jwt assertions (RFC 7523), and prove possession with DPoP proofs (RFC 9449). Used by
//! the load benchmarks and by the device simulator: [`client`] speaks the protocols, [`firmware`]
//! is a device's day (measure, refresh, upload, retry), [`fleet`] runs many devices at once.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use serde_json::{Value, json};

use crate::crypto::jose::{self, PublicJwk};

/// The kind of factory key a device holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// P-256 (ES256), as a secure element would hold.
    Es256,
    Ed25519,
}

/// A new private key of kind `alg`, as PKCS#8 DER.
pub fn generate_pkcs8(alg: KeyAlg) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    let doc = match alg {
        KeyAlg::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError)?,
        KeyAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError)?,
    };
    Ok(doc.as_ref().to_vec())
}

/// A device's private key.
pub enum DeviceKey {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

#[derive(Debug, thiserror::Error)]
#[error("key generation or parsing failed")]
pub struct KeyError;

impl DeviceKey {
    /// A new P-256 key, as a secure element would hold.
    pub fn generate_es256() -> Result<Self, KeyError> {
        Self::from_pkcs8(&generate_pkcs8(KeyAlg::Es256)?)
    }

    pub fn generate_ed25519() -> Result<Self, KeyError> {
        Self::from_pkcs8(&generate_pkcs8(KeyAlg::Ed25519)?)
    }

    /// Loads a PKCS#8 key (P-256 or Ed25519).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(Self::Es256(k));
        }
        Ed25519KeyPair::from_pkcs8(der)
            .map(Self::Ed25519)
            .map_err(|_| KeyError)
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public key as a JWK, for registration.
    pub fn public_jwk(&self) -> Value {
        let jwk = match self {
            Self::Es256(k) => PublicJwk::from_p256_point(k.public_key().as_ref(), None),
            Self::Ed25519(k) => PublicJwk::from_ed25519(k.public_key().as_ref(), None),
        };
        jwk.map(|j| j.to_json()).unwrap_or(Value::Null)
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        PublicJwk::parse(&self.public_jwk())
            .map(|j| j.thumbprint())
            .unwrap_or_default()
    }

    /// Signs a JWT with this key (`alg` is set from the key).
    pub fn sign(&self, mut header: Value, claims: &Value) -> Result<String, KeyError> {
        header["alg"] = json!(self.alg());
        let input = format!(
            "{}.{}",
            jose::b64(header.to_string()),
            jose::b64(claims.to_string())
        );
        let signature = match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .map_err(|_| KeyError)?
                .as_ref()
                .to_vec(),
            Self::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", jose::b64(signature)))
    }

    /// A private_key_jwt client assertion for `issuer`, valid for 60 seconds from `now`.
    pub fn client_assertion(
        &self,
        client_id: &str,
        issuer: &str,
        now: i64,
    ) -> Result<String, KeyError> {
        self.sign(
            json!({ "typ": "JWT" }),
            &json!({
                "iss": client_id,
                "sub": client_id,
                "aud": issuer,
                "iat": now,
                "exp": now + 60,
                "jti": jose::b64(rand::random::<[u8; 16]>()),
            }),
        )
    }

    /// A DPoP proof for `method` on `url`, optionally with a server nonce and the access token
    /// it accompanies (`ath`).
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        now: i64,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, KeyError> {
        let mut claims = json!({
            "jti": jose::b64(rand::random::<[u8; 16]>()),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = access_token {
            claims["ath"] = json!(jose::sha256_b64(t));
        }
        self.sign(
            json!({ "typ": "dpop+jwt", "jwk": self.public_jwk() }),
            &claims,
        )
    }
}

pub mod client;
pub mod firmware;
pub mod fleet;

/// The key as PEM (PKCS#8), for a key file.
pub fn pkcs8_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// Reads a PEM (PKCS#8) key file's DER.
pub fn pkcs8_from_pem(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
