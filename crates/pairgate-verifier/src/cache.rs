//! Verified access tokens, remembered by their SHA-256 until they expire, so that a device's
//! many requests with one token cost one signature check. Only successes are remembered; a hit
//! still has its expiry checked, and every per-request check (DPoP proof, binding, replay,
//! revocation) runs as before. A token's bytes cannot change, so neither can its verdict, except
//! by the passing of time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::claims::AccessClaims;

pub(super) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<String, (Arc<AccessClaims>, i64)>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The claims of a token verified before, if it is still unexpired at `now_ms`.
    pub fn get(&self, digest: &str, now_ms: i64) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|(_, until)| now_ms < *until)
            .map(|(claims, _)| Arc::clone(claims))
    }

    /// Remembers a verified token until `until_ms`. When full, expired entries go first, and if
    /// that is not enough, everything (the next requests verify again; nothing is accepted that
    /// would not be).
    pub fn insert(&self, digest: String, claims: Arc<AccessClaims>, until_ms: i64, now_ms: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| now_ms < *until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (claims, until_ms));
    }
}
