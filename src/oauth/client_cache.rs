//! Recently authenticated private_key_jwt clients: their records and parsed keys, so that a token
//! request does not read the client from the database and parse its JWK Set each time (devices
//! poll and refresh often; the registry changes rarely).
//!
//! The cache only saves work; it never decides. A write transaction that acts on a client
//! authenticated from the cache first confirms, inside the transaction, that the client is
//! still active with the same keys (`store::registry::client_unchanged`); a client disabled or
//! re-keyed meanwhile is refused exactly as if it had been read afresh, and its entry is
//! dropped. An assertion that does not verify against cached keys is checked again against the
//! database before it is refused, so a device whose key was replaced authenticates at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::crypto::jose::PublicJwk;
use crate::store::registry::ClientRecord;

/// How long an entry is used before the client is read again (the transaction check above makes
/// staleness harmless; this bounds the memory of clients that went quiet).
const TTL_MS: i64 = 5 * 60 * 1000;

/// Entries kept at most; when full, the cache starts over (a simple bound, enough for a fleet
/// whose active clients fit, and harmless when they do not: a miss is one database read).
const MAX_ENTRIES: usize = 100_000;

/// An active client and its parsed keys.
pub struct CachedClient {
    pub record: ClientRecord,
    pub keys: Vec<PublicJwk>,
    loaded_at_ms: i64,
}

#[derive(Default)]
pub struct ClientCache {
    entries: Mutex<HashMap<String, Arc<CachedClient>>>,
}

impl ClientCache {
    /// The entry for `client_id`, if one was stored in the last [`TTL_MS`].
    pub fn get(&self, client_id: &str, now_ms: i64) -> Option<Arc<CachedClient>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(client_id)
            .filter(|c| now_ms.saturating_sub(c.loaded_at_ms) < TTL_MS)
            .cloned()
    }

    /// Stores an active client with its parsed keys.
    pub fn put(&self, record: ClientRecord, keys: Vec<PublicJwk>, now_ms: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&record.client_id) {
            entries.clear();
        }
        let id = record.client_id.clone();
        entries.insert(
            id,
            Arc::new(CachedClient {
                record,
                keys,
                loaded_at_ms: now_ms,
            }),
        );
    }

    pub fn forget(&self, client_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::registry::ClientKind;

    fn record(id: &str) -> ClientRecord {
        ClientRecord {
            client_id: id.to_owned(),
            kind: ClientKind::Device,
            name: id.to_owned(),
            active: true,
            jwks: Some(r#"{"keys":[]}"#.to_owned()),
            secret_hash: None,
            scope: "telemetry:write".to_owned(),
            created_at: 0,
        }
    }

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let cache = ClientCache::default();
        cache.put(record("SN-1"), Vec::new(), 1_000);
        assert!(cache.get("SN-1", 1_000 + TTL_MS - 1).is_some());
        assert!(cache.get("SN-1", 1_000 + TTL_MS).is_none());
        assert!(cache.get("SN-2", 1_000).is_none());
        cache.forget("SN-1");
        assert!(cache.get("SN-1", 1_000).is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = ClientCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put(record(&format!("SN-{i}")), Vec::new(), 0);
        }
        assert!(cache.get("SN-0", 0).is_some());
        cache.put(record("SN-new"), Vec::new(), 0);
        assert!(cache.get("SN-0", 0).is_none());
        assert!(cache.get("SN-new", 0).is_some());
    }
}
