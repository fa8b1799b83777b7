//! A simulated device for tests: a factory key (ES256 or EdDSA) that signs client assertions
//! (RFC 7523) and DPoP proofs (RFC 9449), as firmware would.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use pairgate::crypto::jose::{self, PublicJwk};
use serde_json::{Value, json};

/// A key pair that signs JWTs.
pub enum Signer {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap(),
        )
    }

    pub fn ed25519() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => PublicJwk::from_p256_point(k.public_key().as_ref(), None),
            Self::Ed25519(k) => PublicJwk::from_ed25519(k.public_key().as_ref(), None),
        }
        .unwrap()
        .to_json()
    }

    pub fn thumbprint(&self) -> String {
        PublicJwk::parse(&self.jwk()).unwrap().thumbprint()
    }

    /// A compact JWS over the given header (alg is filled in) and claims.
    pub fn sign(&self, mut header: Value, claims: &Value) -> String {
        header["alg"] = json!(self.alg());
        let input = format!(
            "{}.{}",
            jose::b64(header.to_string()),
            jose::b64(claims.to_string())
        );
        let sig = match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", jose::b64(sig))
    }
}

/// A registered device as the tests drive it.
pub struct TestDevice {
    pub serial: String,
    pub key: Signer,
    /// The issuer (the app's base URL).
    pub issuer: String,
}

pub fn random_id() -> String {
    jose::b64(rand::random::<[u8; 12]>())
}

impl TestDevice {
    /// A client assertion for the token endpoint, valid for 60 s from `now`.
    pub fn assertion(&self, now: i64) -> String {
        self.assertion_with(now, json!({}))
    }

    /// A client assertion with some claims overridden (`null` removes one).
    pub fn assertion_with(&self, now: i64, overrides: Value) -> String {
        let mut claims = json!({
            "iss": self.serial,
            "sub": self.serial,
            "aud": self.issuer,
            "iat": now,
            "exp": now + 60,
            "jti": random_id(),
        });
        merge(&mut claims, overrides);
        self.key.sign(json!({"typ": "JWT"}), &claims)
    }

    /// A DPoP proof for `method` on `path` (under the issuer), at `now`.
    pub fn dpop(&self, method: &str, path: &str, now: i64) -> String {
        self.dpop_with(method, path, now, json!({}), json!({}))
    }

    /// A DPoP proof with header and claim overrides (`null` removes a claim).
    pub fn dpop_with(
        &self,
        method: &str,
        path: &str,
        now: i64,
        header: Value,
        claims: Value,
    ) -> String {
        let mut h = json!({"typ": "dpop+jwt", "jwk": self.key.jwk()});
        merge(&mut h, header);
        let mut c = json!({
            "jti": random_id(),
            "htm": method,
            "htu": format!("{}{path}", self.issuer),
            "iat": now,
        });
        merge(&mut c, claims);
        self.key.sign(h, &c)
    }
}

fn merge(target: &mut Value, overrides: Value) {
    if let (Some(t), Value::Object(o)) = (target.as_object_mut(), overrides) {
        for (k, v) in o {
            if v.is_null() {
                t.remove(&k);
            } else {
                t.insert(k, v);
            }
        }
    }
}
