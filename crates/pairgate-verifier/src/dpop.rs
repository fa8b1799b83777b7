//! DPoP proof validation (RFC 9449 §4.3) and server nonces (§8).
//!
//! Nonces are stateless: `base64url(issued_at_secs || HMAC(key, issued_at_secs)[..16])`, keyed by
//! a key the server supplies (pairgate derives it from its master key), so every instance that
//! shares the key accepts every other's nonces without a table.
//!
//! Freshness comes from one of two things. A proof without a nonce is fresh by its `iat`, within
//! [`DpopPolicy::max_age_ms`] (plus the clock skew) of now; one outside that window gets
//! `use_dpop_nonce` (and the surface answers with a `DPoP-Nonce`), whether or not nonces are
//! required, so a device whose clock is wrong (one that booted in 1970, before it reached NTP)
//! recovers by itself: RFC 9449 §8 lets a server supply a nonce at any time. A proof with a
//! nonce is fresh by the nonce: its `iat` must be there but may say anything, and the nonce's
//! own age bounds the proof (accepted while the nonce is at most
//! [`DpopPolicy::nonce_lifetime_ms`] old, its jti remembered until then). A nonce is always
//! checked when present: one that this server never issued, or that has expired, gets
//! `use_dpop_nonce`, never a pass on its `iat`.

use aws_lc_rs::hmac;
use serde_json::Value;

use crate::jose::{self, CompactJws, PublicJwk};

/// Why a proof was refused, in RFC 9449 terms. Descriptions are fixed texts, safe to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// RFC 9449 §7.1 (resources) and §5 (token endpoint) `invalid_dpop_proof`.
    #[error("invalid_dpop_proof: {0}")]
    Invalid(&'static str),
    /// RFC 9449 §8, §9 `use_dpop_nonce`: the proof needs a current server nonce; answer with a
    /// fresh `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseNonce,
}

/// What a request presented: its `DPoP` header values and what the proof must be bound to.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// Every `DPoP` header value (more than one is an error).
    pub proofs: &'a [String],
    pub method: &'a str,
    /// The endpoint's absolute URL, built from configuration (never from request headers).
    pub url: &'a str,
    /// For resource requests: the access token the proof must hash (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but the replay check, which the caller's transaction does.
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof key: what tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    /// Until when the jti must be remembered.
    pub replay_until_ms: i64,
}

impl DpopProof {
    /// The replay-store scope for this proof's jti.
    pub fn replay_scope(&self) -> String {
        format!("dpop:{}", self.jkt)
    }
}

/// Checks proofs and makes nonces.
pub struct DpopVerifier {
    nonce_key: hmac::Key,
    require_nonce: bool,
    nonce_lifetime_ms: i64,
    max_age_ms: i64,
    skew_ms: i64,
}

const MAX_JTI_LEN: usize = 256;

/// How strict a [`DpopVerifier`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Require a current server nonce (RFC 9449 §8, §9).
    pub require_nonce: bool,
    pub nonce_lifetime_ms: i64,
    /// How old (by `iat`) a proof may be.
    pub max_age_ms: i64,
    /// Tolerated clock difference with clients.
    pub skew_ms: i64,
}

impl DpopVerifier {
    /// A verifier with `policy`; `nonce_key` keys the stateless nonces.
    pub fn new(policy: DpopPolicy, nonce_key: [u8; 32]) -> Self {
        Self {
            nonce_key: hmac::Key::new(hmac::HMAC_SHA256, &nonce_key),
            require_nonce: policy.require_nonce,
            nonce_lifetime_ms: policy.nonce_lifetime_ms,
            max_age_ms: policy.max_age_ms,
            skew_ms: policy.skew_ms,
        }
    }

    /// A nonce for the `DPoP-Nonce` header of every response, when nonces are required (a
    /// `use_dpop_nonce` answer carries one in any case: [`Self::nonce`]).
    pub fn required_nonce(&self, now_ms: i64) -> Option<String> {
        self.require_nonce.then(|| self.nonce(now_ms))
    }

    /// A nonce valid from `now_ms` for the configured lifetime.
    pub fn nonce(&self, now_ms: i64) -> String {
        let secs = (now_ms / 1000).to_be_bytes();
        let tag = hmac::sign(&self.nonce_key, &secs);
        let mut raw = secs.to_vec();
        raw.extend_from_slice(&tag.as_ref()[..16]);
        jose::b64(raw)
    }

    /// When a nonce this server issued was made, if it is still valid at `now_ms`.
    fn nonce_issued_ms(&self, nonce: &str, now_ms: i64) -> Option<i64> {
        let raw = jose::b64_decode(nonce).filter(|raw| raw.len() == 24)?;
        let (secs, tag) = raw.split_at(8);
        let mut full = [0u8; 32];
        full.copy_from_slice(hmac::sign(&self.nonce_key, secs).as_ref());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&full[..16], tag)) {
            return None;
        }
        let issued_ms = i64::from_be_bytes(secs.try_into().ok()?).saturating_mul(1000);
        (issued_ms <= now_ms + self.skew_ms && now_ms - issued_ms <= self.nonce_lifetime_ms)
            .then_some(issued_ms)
    }

    /// RFC 9449 §4.3 checks 1–12 (13, the jti replay check, is the caller's, in its transaction).
    /// `Ok(None)` when the request carries no proof.
    pub fn check(
        &self,
        req: &DpopRequest<'_>,
        now_ms: i64,
    ) -> Result<Option<DpopProof>, DpopError> {
        let proof = match req.proofs {
            [] => return Ok(None),
            [one] => one,
            _ => return Err(DpopError::Invalid("more than one DPoP header")),
        };
        let bad = DpopError::Invalid;
        let jws = CompactJws::parse(proof)
            .map_err(|_| bad("the DPoP proof is not a valid JWS with an allowed alg"))?;
        if jws.header_str("typ") != Some("dpop+jwt") {
            return Err(bad("the DPoP proof's typ must be dpop+jwt"));
        }
        let jwk_value = jws
            .header
            .get("jwk")
            .ok_or(bad("the DPoP proof has no jwk header"))?;
        let jwk = PublicJwk::parse(jwk_value)
            .map_err(|_| bad("the DPoP proof's jwk is not an acceptable public key"))?;
        if jwk.alg() != jws.alg {
            return Err(bad("the DPoP proof's alg does not match its key"));
        }
        if !jwk.verify(&jws) {
            return Err(bad("the DPoP proof's signature does not verify"));
        }
        let jti = jws
            .claim_str("jti")
            // Control characters (NUL above all) cannot be stored as text on PostgreSQL.
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN && !j.chars().any(char::is_control))
            .ok_or(bad("the DPoP proof needs a jti"))?;
        if jws.claim_str("htm") != Some(req.method) {
            return Err(bad(
                "the DPoP proof's htm does not match the request method",
            ));
        }
        let htu = jws
            .claim_str("htu")
            .ok_or(bad("the DPoP proof needs an htu"))?;
        if !same_target(htu, req.url) {
            return Err(bad("the DPoP proof's htu does not match the request URL"));
        }
        let iat = jws
            .claim_time("iat")
            .ok_or(bad("the DPoP proof needs an iat"))?
            .saturating_mul(1000);
        let replay_until_ms = self.freshness(&jws, iat, now_ms)?;
        match (req.access_token, jws.claim_str("ath")) {
            (Some(token), Some(ath)) if ath == jose::sha256_b64(token) => {}
            (Some(_), _) => {
                return Err(bad("the DPoP proof's ath does not match the access token"));
            }
            (None, _) => {}
        }
        Ok(Some(DpopProof {
            jkt: jwk.thumbprint(),
            jti: jti.to_owned(),
            replay_until_ms,
        }))
    }

    /// RFC 9449 §4.3 checks 10 and 11 (the nonce, the `iat` window), as the module header
    /// describes; returns until when the proof's jti must be remembered.
    fn freshness(&self, jws: &CompactJws, iat_ms: i64, now_ms: i64) -> Result<i64, DpopError> {
        match jws.claims.get("nonce") {
            Some(Value::String(nonce)) => {
                let issued_ms = self
                    .nonce_issued_ms(nonce, now_ms)
                    .ok_or(DpopError::UseNonce)?;
                // The proof is accepted while its nonce is; another instance's clock may be
                // behind by the skew.
                Ok(issued_ms + self.nonce_lifetime_ms + self.skew_ms)
            }
            Some(_) => Err(DpopError::UseNonce),
            None if self.require_nonce => Err(DpopError::UseNonce),
            None => {
                let window = now_ms - self.max_age_ms - self.skew_ms..=now_ms + self.skew_ms;
                if !window.contains(&iat_ms) {
                    return Err(DpopError::UseNonce);
                }
                Ok(iat_ms + self.max_age_ms + 2 * self.skew_ms)
            }
        }
    }
}

/// RFC 9449 §4.3 check 9: htu equals the request URI without query and fragment, after
/// syntax-based normalisation (scheme and host case, default port, percent-encoding case).
fn same_target(htu: &str, expected: &str) -> bool {
    // The usual case, and the cheap one: the client sent exactly the URL pairgate expects.
    if htu == expected && !expected.contains(['?', '#']) {
        return true;
    }
    let clean = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((clean(htu), clean(expected)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_comparison_normalises_syntax_only() {
        let e = "https://id.example.com/oauth/token";
        assert!(same_target("https://ID.example.com:443/oauth/token", e));
        assert!(same_target("https://id.example.com/oauth/token?x=1#f", e));
        assert!(!same_target("https://id.example.com/oauth/token/", e));
        assert!(!same_target("http://id.example.com/oauth/token", e));
        assert!(!same_target("https://evil.example.com/oauth/token", e));
    }

    #[test]
    fn nonces_expire_and_cannot_be_forged() {
        let policy = DpopPolicy {
            require_nonce: false,
            nonce_lifetime_ms: 300_000,
            max_age_ms: 60_000,
            skew_ms: 30_000,
        };
        let v = DpopVerifier::new(policy, [7; 32]);
        let n = v.nonce(1_000_000);
        assert_eq!(v.nonce_issued_ms(&n, 1_000_000), Some(1_000_000));
        assert_eq!(v.nonce_issued_ms(&n, 1_000_000 + 299_000), Some(1_000_000));
        assert_eq!(v.nonce_issued_ms(&n, 1_000_000 + 301_000), None);
        let other = DpopVerifier::new(policy, [8; 32]);
        assert_eq!(other.nonce_issued_ms(&n, 1_000_000), None);
    }
}
