//! The access-token signing key ring (RFC 9068 tokens, published at `/oauth/jwks`).
//!
//! Keys live in the database, private halves encrypted (AES-256-GCM under a key derived from the
//! master key), so every instance signs with the same ring. Rotation is publish-before-use: a new
//! key is published at once but signs only from `activates_at` (now + `publish_before_use_secs`),
//! and a superseded key stays published until every token it signed has expired.
//!
//! Every instance keeps the ring in memory and reads it again: every `keys.ring_reload_secs`
//! (which `publish_before_use_secs` may not undercut, so every instance knows a key before it
//! signs), at once when PostgreSQL announces a rotation (`LISTEN`/`NOTIFY`, see [`keep_fresh`]),
//! and when a token names a kid the ring does not hold ([`KeyRing::find_key`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::SigningAlg;
use crate::crypto::jose::{self, JwsAlg, PublicJwk};
use crate::crypto::master_key::MasterKey;
use crate::crypto::sealing::SecretBox;
use crate::store::keys::{self, SigningKeyRecord};
use crate::store::{Store, StoreError};
use crate::verifier::keys::{KeyLookup, KeySource, KeysUnavailable};

/// A key ready to sign, decrypted in memory.
struct LoadedKey {
    kid: String,
    alg: JwsAlg,
    public: PublicJwk,
    signer: Signer,
    activates_at: i64,
}

/// A private key parsed once, when the ring is loaded. Parsing is not free: aws-lc-rs checks
/// an Ed25519 PKCS#8 document by deriving its public key (a scalar multiplication), which
/// jsonwebtoken's `encode` repeated for every token it signed.
enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Signer {
    fn parse(alg: JwsAlg, pkcs8: &[u8]) -> Option<Self> {
        match alg {
            JwsAlg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .ok()
                .map(Self::Es256),
            JwsAlg::EdDSA => Ed25519KeyPair::from_pkcs8(pkcs8).ok().map(Self::EdDsa),
        }
    }

    /// The JWS signature of `input`: ES256 as R || S (RFC 7518 §3.4), EdDSA as RFC 8037 §3.1.
    fn sign(&self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Es256(pair) => pair
                .sign(&SystemRandom::new(), input)
                .ok()
                .map(|sig| sig.as_ref().to_vec()),
            Self::EdDsa(pair) => Some(pair.sign(input).as_ref().to_vec()),
        }
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, KeyRingError> {
    serde_json::to_vec(value)
        .map_err(|e| KeyRingError::Sign(format!("cannot serialise the token: {e}")))
}

/// A JWS header: the algorithm, the token type, the key.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// The ring, shared by all workers.
pub struct KeyRing {
    store: Store,
    sealing: SecretBox,
    /// How long a superseded key stays published: the access-token lifetime plus clock skew.
    retire_after_ms: i64,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
    /// When (clock ms) a token's unknown kid last made the ring read again.
    unknown_kid_reload: tokio::sync::Mutex<i64>,
}

/// A kid the ring does not hold makes it read the ring again at most this often (clock ms), so
/// that made-up kids cannot turn into a stream of database reads.
const UNKNOWN_KID_RELOAD_MS: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} cannot be decrypted: is this the master key it was made with?")]
    Decrypt { kid: String },
    #[error("signing key {kid} is corrupt: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("no signing key is active yet")]
    NoActiveKey,
    #[error("signing failed: {0}")]
    Sign(String),
}

impl KeyRing {
    /// Loads the ring, creating a first, immediately active key when there is none.
    pub async fn open(
        store: Store,
        master: &MasterKey,
        alg: SigningAlg,
        retire_after_ms: i64,
        now_ms: i64,
    ) -> Result<Self, KeyRingError> {
        let ring = Self {
            store,
            sealing: SecretBox::new(master.derive("signing-key-encryption")),
            retire_after_ms,
            keys: RwLock::new(Arc::new(Vec::new())),
            unknown_kid_reload: tokio::sync::Mutex::new(i64::MIN),
        };
        ring.reload().await?;
        if ring.snapshot().is_empty() {
            ring.add_key(alg, now_ms, now_ms).await?;
        }
        Ok(ring)
    }

    /// Re-reads the ring from the database (keys rotated in by another instance).
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let rows = self.store.read(keys::all).await?;
        let loaded = rows
            .iter()
            .map(|row| self.decrypt(row))
            .collect::<Result<Vec<_>, _>>()?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    /// Adds a key that signs from `now + publish_before_use_ms`; returns its kid.
    pub async fn rotate(
        &self,
        alg: SigningAlg,
        now_ms: i64,
        publish_before_use_ms: i64,
    ) -> Result<String, KeyRingError> {
        self.add_key(alg, now_ms, now_ms + publish_before_use_ms)
            .await
    }

    async fn add_key(
        &self,
        alg: SigningAlg,
        now_ms: i64,
        activates_at: i64,
    ) -> Result<String, KeyRingError> {
        let record = self.generate(alg, now_ms, activates_at)?;
        let kid = record.kid.clone();
        self.store
            .write(move |tx| keys::insert(tx, &record))
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Signs `claims` as a JWT with the newest active key, with the given `typ`.
    pub fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        now_ms: i64,
    ) -> Result<String, KeyRingError> {
        let keys = self.snapshot();
        let key = keys
            .iter()
            .rev()
            .find(|k| k.activates_at <= now_ms)
            .ok_or(KeyRingError::NoActiveKey)?;
        let header = json(&JwsHeader {
            alg: key.alg.name(),
            typ,
            kid: &key.kid,
        })?;
        let mut token = jose::b64(header);
        token.push('.');
        token.push_str(&jose::b64(json(claims)?));
        let signature = key
            .signer
            .sign(token.as_bytes())
            .ok_or_else(|| KeyRingError::Sign("the signing key refused to sign".into()))?;
        token.push('.');
        token.push_str(&jose::b64(signature));
        Ok(token)
    }

    /// The public key for `kid` if it is currently published.
    pub fn verification_key(&self, kid: &str, now_ms: i64) -> Option<PublicJwk> {
        let keys = self.snapshot();
        published(&keys, now_ms, self.retire_after_ms)
            .find(|k| k.kid == kid)
            .map(|k| k.public.clone())
    }

    /// The public key for `kid` if it is published, reading the ring again first when it does
    /// not hold `kid` at all: another instance may have rotated it in since the last reload.
    /// Such a reload happens at most once per `UNKNOWN_KID_RELOAD_MS` of `now_ms`; requests
    /// arriving meanwhile wait for it rather than start their own.
    pub async fn find_key(
        &self,
        kid: &str,
        now_ms: i64,
    ) -> Result<Option<PublicJwk>, KeyRingError> {
        if let Some(key) = self.verification_key(kid, now_ms) {
            return Ok(Some(key));
        }
        if self.snapshot().iter().any(|k| k.kid == kid) {
            // Held but retired: reading again would not bring it back.
            return Ok(None);
        }
        let mut last = self.unknown_kid_reload.lock().await;
        if let Some(key) = self.verification_key(kid, now_ms) {
            return Ok(Some(key));
        }
        if now_ms < last.saturating_add(UNKNOWN_KID_RELOAD_MS) {
            return Ok(None);
        }
        *last = now_ms;
        self.reload().await?;
        Ok(self.verification_key(kid, now_ms))
    }

    /// The JWK Set to publish: keys waiting to activate, the active one, and superseded keys
    /// whose tokens may still be alive.
    pub fn jwks(&self, now_ms: i64) -> Value {
        let keys = self.snapshot();
        let list: Vec<Value> = published(&keys, now_ms, self.retire_after_ms)
            .map(|k| {
                let mut jwk = k.public.to_json();
                if let Some(obj) = jwk.as_object_mut() {
                    obj.insert("use".into(), json!("sig"));
                    obj.insert("alg".into(), json!(k.alg.name()));
                }
                jwk
            })
            .collect();
        json!({ "keys": list })
    }

    /// Kids of keys that no token can need any more (for pruning).
    pub fn retired_kids(&self, now_ms: i64) -> Vec<String> {
        let keys = self.snapshot();
        let live: Vec<&str> = published(&keys, now_ms, self.retire_after_ms)
            .map(|k| k.kid.as_str())
            .collect();
        keys.iter()
            .filter(|k| !live.contains(&k.kid.as_str()))
            .map(|k| k.kid.clone())
            .collect()
    }

    fn generate(
        &self,
        alg: SigningAlg,
        now_ms: i64,
        activates_at: i64,
    ) -> Result<SigningKeyRecord, KeyRingError> {
        let rng = SystemRandom::new();
        let fail = |_| KeyRingError::Sign("key generation failed".into());
        let (jws_alg, pkcs8, public) = match alg {
            SigningAlg::ES256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(fail)?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                    .map_err(|_| KeyRingError::Sign("generated key unusable".into()))?;
                let public = PublicJwk::from_p256_point(pair.public_key().as_ref(), None);
                (JwsAlg::ES256, doc.as_ref().to_vec(), public)
            }
            SigningAlg::EdDSA => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(fail)?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                    .map_err(|_| KeyRingError::Sign("generated key unusable".into()))?;
                let public = PublicJwk::from_ed25519(pair.public_key().as_ref(), None);
                (JwsAlg::EdDSA, doc.as_ref().to_vec(), public)
            }
        };
        let public =
            public.ok_or_else(|| KeyRingError::Sign("unexpected public key size".into()))?;
        // The kid is the key's RFC 7638 thumbprint: stable, unique, and checkable by anyone.
        let kid = public.thumbprint();
        let public = PublicJwk::parse(&{
            let mut v = public.to_json();
            if let Some(o) = v.as_object_mut() {
                o.insert("kid".into(), json!(kid));
            }
            v
        })
        .map_err(|e| KeyRingError::Sign(e.to_string()))?;
        Ok(SigningKeyRecord {
            private_key: self.encrypt(&kid, &pkcs8)?,
            public_jwk: public.to_json().to_string(),
            alg: jws_alg.name().to_owned(),
            kid,
            created_at: now_ms,
            activates_at,
        })
    }

    fn encrypt(&self, kid: &str, plaintext: &[u8]) -> Result<String, KeyRingError> {
        self.sealing
            .seal(kid.as_bytes(), plaintext)
            .ok_or_else(|| KeyRingError::Sign("encryption failed".into()))
    }

    fn decrypt(&self, row: &SigningKeyRecord) -> Result<LoadedKey, KeyRingError> {
        let corrupt = |reason: &str| KeyRingError::Corrupt {
            kid: row.kid.clone(),
            reason: reason.to_owned(),
        };
        let pkcs8 = self
            .sealing
            .open(row.kid.as_bytes(), &row.private_key)
            .ok_or_else(|| KeyRingError::Decrypt {
                kid: row.kid.clone(),
            })?;
        let pkcs8 = pkcs8.as_slice();
        let alg = JwsAlg::parse(&row.alg).ok_or_else(|| corrupt("unknown alg"))?;
        let signer =
            Signer::parse(alg, pkcs8).ok_or_else(|| corrupt("the private key does not parse"))?;
        let public_json: Value =
            serde_json::from_str(&row.public_jwk).map_err(|_| corrupt("public JWK is not JSON"))?;
        let public = PublicJwk::parse(&public_json).map_err(|e| corrupt(&e.to_string()))?;
        Ok(LoadedKey {
            kid: row.kid.clone(),
            alg,
            public,
            signer,
            activates_at: row.activates_at,
        })
    }
}

/// The ring as the verifier's key source: pairgate's resource servers verify against the keys
/// it publishes, in-process. A kid the ring does not hold yet may be a key another instance just
/// rotated in ([`KeyRing::find_key`] reads the ring again, at most once a second).
impl KeySource for KeyRing {
    fn key<'a>(&'a self, kid: &'a str, now_ms: i64) -> KeyLookup<'a> {
        Box::pin(async move {
            self.find_key(kid, now_ms).await.map_err(|e| {
                tracing::warn!(error = %e, "could not read the signing key ring");
                KeysUnavailable
            })
        })
    }
}

/// Keeps `ring` current for as long as it exists: reads it again every `every`, and at once
/// whenever `rotations` (PostgreSQL's notification of a new key, `Store::signing_key_rotations`)
/// wakes. Spawned on the current tokio runtime.
pub fn keep_fresh(
    ring: &Arc<KeyRing>,
    every: Duration,
    rotations: Option<Arc<tokio::sync::Notify>>,
) {
    let ring = Arc::downgrade(ring);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the ring was just loaded.
        ticker.tick().await;
        loop {
            match &rotations {
                Some(rotated) => {
                    tokio::select! {
                        _ = ticker.tick() => {}
                        () = rotated.notified() => {}
                    }
                }
                None => {
                    ticker.tick().await;
                }
            }
            let Some(ring) = ring.upgrade() else {
                return;
            };
            if let Err(e) = ring.reload().await {
                tracing::warn!(error = %e, "could not reload the signing key ring; will retry");
            }
        }
    });
}

/// Keys to publish at `now`: all not yet superseded, and superseded ones for `retire_after_ms`
/// after their successor took over. `keys` is ordered by activation.
fn published(
    keys: &[LoadedKey],
    now_ms: i64,
    retire_after_ms: i64,
) -> impl Iterator<Item = &LoadedKey> {
    keys.iter()
        .enumerate()
        .filter(move |(i, _)| {
            // The successor that actually took over: the next key already active.
            match keys[i + 1..].iter().find(|k| k.activates_at <= now_ms) {
                Some(successor) => now_ms < successor.activates_at + retire_after_ms,
                None => true,
            }
        })
        .map(|(_, k)| k)
}
