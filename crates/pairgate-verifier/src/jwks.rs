//! The issuer's signing keys for a relying app: found through discovery (RFC 8414 §3: the
//! metadata's `issuer` must equal the configured one; its `jwks_uri`), fetched and cached for the
//! JWKS response's `max-age`, and fetched again at once when a token names an unknown `kid`
//! (the issuer rotated), at most once per `min_refetch` so a stream of tokens with made-up kids
//! cannot turn the app into a load generator against the issuer. The time is the verifier's,
//! handed in with each look-up.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::jose::PublicJwk;
use crate::keys::{KeyLookup, KeySource, KeysUnavailable};

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the metadata at {url} is not usable: {reason}")]
    Metadata { url: String, reason: &'static str },
}

/// Cache policy.
#[derive(Debug, Clone, Copy)]
pub struct JwksPolicy {
    /// Used when the JWKS response has no `max-age`.
    pub default_max_age: Duration,
    /// Bounds applied to the response's `max-age`.
    pub min_max_age: Duration,
    pub max_max_age: Duration,
    /// Fewest seconds between two fetches caused by unknown kids (or failures).
    pub min_refetch: Duration,
    /// How long past its expiry a cached set is still used while the issuer is unreachable.
    pub stale_if_error: Duration,
    pub timeout: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            default_max_age: Duration::from_secs(300),
            min_max_age: Duration::from_secs(30),
            max_max_age: Duration::from_secs(24 * 3600),
            min_refetch: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, PublicJwk>,
    /// When the last fetch was attempted (successful or not), Unix ms.
    attempted_at: Option<i64>,
    /// Until when `keys` is fresh.
    fresh_until: i64,
    /// The last fetch failed.
    last_failed: bool,
    fetches: u64,
}

/// A cached JWK Set.
pub struct JwksCache {
    http: reqwest::Client,
    jwks_uri: String,
    policy: JwksPolicy,
    cached: RwLock<Cached>,
    /// One fetch at a time; waiters then find the fresh set.
    fetching: tokio::sync::Mutex<()>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl JwksCache {
    /// A cache for a known `jwks_uri` (nothing is fetched until a key is needed).
    pub fn new(http: reqwest::Client, jwks_uri: String, policy: JwksPolicy) -> Self {
        Self {
            http,
            jwks_uri,
            policy,
            cached: RwLock::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads the issuer's metadata (RFC 8414) and returns a cache for its `jwks_uri`, with the
    /// metadata document.
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        policy: JwksPolicy,
    ) -> Result<(Self, Value), DiscoveryError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let fetch = |reason: String| DiscoveryError::Fetch {
            url: url.clone(),
            reason,
        };
        let res = http
            .get(&url)
            .timeout(policy.timeout)
            .send()
            .await
            .map_err(|e| fetch(e.to_string()))?;
        if !res.status().is_success() {
            return Err(fetch(format!("status {}", res.status())));
        }
        let meta: Value = res.json().await.map_err(|e| fetch(e.to_string()))?;
        let bad = |reason| DiscoveryError::Metadata {
            url: url.clone(),
            reason,
        };
        // RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
        if meta["issuer"].as_str() != Some(issuer) {
            return Err(bad("its issuer is not the one asked for"));
        }
        let jwks_uri = meta["jwks_uri"]
            .as_str()
            .ok_or_else(|| bad("it has no jwks_uri"))?
            .to_owned();
        Ok((Self::new(http, jwks_uri, policy), meta))
    }

    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// How many fetches were attempted so far.
    pub fn fetches(&self) -> u64 {
        self.read().fetches
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key named `kid` at `now` (Unix ms): from the cache while it is fresh, otherwise after
    /// a fetch. `Ok(None)` when the issuer does not publish it (or a refetch for an unknown kid
    /// is not due yet).
    pub async fn key(&self, kid: &str, now: i64) -> Result<Option<PublicJwk>, KeysUnavailable> {
        if let Some(answer) = self.cached_answer(kid, now) {
            return answer;
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(answer) = self.cached_answer(kid, now) {
            return answer;
        }
        let fetched = self.fetch().await;
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        cached.attempted_at = Some(now);
        cached.fetches += 1;
        match fetched {
            Ok((keys, max_age)) => {
                cached.keys = keys;
                cached.fresh_until = now + ms(max_age);
                cached.last_failed = false;
                Ok(cached.keys.get(kid).cloned())
            }
            Err(reason) => {
                tracing::warn!(jwks_uri = %self.jwks_uri, %reason, "cannot refresh the JWKS");
                cached.last_failed = true;
                self.stale_or_unavailable(&cached, kid, now)
            }
        }
    }

    /// The answer the cache can give without fetching, or `None` when a fetch is due.
    fn cached_answer(
        &self,
        kid: &str,
        now: i64,
    ) -> Option<Result<Option<PublicJwk>, KeysUnavailable>> {
        let cached = self.read();
        let fresh = now < cached.fresh_until;
        if fresh && let Some(key) = cached.keys.get(kid) {
            return Some(Ok(Some(key.clone())));
        }
        let rested = cached
            .attempted_at
            .is_none_or(|t| now - t >= ms(self.policy.min_refetch));
        // A set that simply expired is fetched again at once; after a failure, or for a kid the
        // fresh set lacks, only once `min_refetch` has passed.
        let due = rested || (!fresh && !cached.last_failed);
        if due {
            None
        } else {
            Some(self.stale_or_unavailable(&cached, kid, now))
        }
    }

    /// Without a fetch: the cached key while the set is fresh or within its stale grace, else
    /// unavailable.
    fn stale_or_unavailable(
        &self,
        cached: &Cached,
        kid: &str,
        now: i64,
    ) -> Result<Option<PublicJwk>, KeysUnavailable> {
        if now
            < cached
                .fresh_until
                .saturating_add(ms(self.policy.stale_if_error))
        {
            Ok(cached.keys.get(kid).cloned())
        } else {
            Err(KeysUnavailable)
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, PublicJwk>, Duration), String> {
        let res = self
            .http
            .get(&self.jwks_uri)
            .timeout(self.policy.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("status {}", res.status()));
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(self.policy.default_max_age)
            .clamp(self.policy.min_max_age, self.policy.max_max_age);
        let set: Value = res.json().await.map_err(|e| e.to_string())?;
        let keys = set["keys"]
            .as_array()
            .ok_or("the JWKS has no keys array")?
            .iter()
            // Keys pairgate cannot use (other types, encryption keys, no kid) are skipped, not
            // fatal: the issuer may publish more than this version understands.
            .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
            .filter_map(|k| PublicJwk::parse(k).ok())
            .filter_map(|k| k.kid().map(str::to_owned).map(|kid| (kid, k)))
            .collect();
        Ok((keys, max_age))
    }
}

impl KeySource for JwksCache {
    fn key<'a>(&'a self, kid: &'a str, now_ms: i64) -> KeyLookup<'a> {
        Box::pin(JwksCache::key(self, kid, now_ms))
    }
}

/// `max-age` from a Cache-Control value.
fn max_age(header: &str) -> Option<Duration> {
    header.split(',').find_map(|d| {
        let (name, value) = d.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=900"),
            Some(Duration::from_secs(900))
        );
        assert_eq!(max_age("no-store"), None);
    }
}
