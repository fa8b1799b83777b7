//! The [`Verifier`]: RFC 9068 §4 (JWT access tokens: `typ`, alg allow-list, signature by a
//! published key, `iss`, `aud`, `exp`) and RFC 9449 §7 (DPoP-bound tokens: the `DPoP` scheme, a
//! proof checked per §4.3 with `ath`, and its key equal to `cnf.jkt`).

use std::sync::Arc;

use serde_json::Value;

use crate::cache::TokenCache;
use crate::claims::AccessClaims;
use crate::clock::Clock;
use crate::dpop::{DpopError, DpopPolicy, DpopProof, DpopRequest, DpopVerifier};
use crate::jose::{self, CompactJws, JwsAlg};
use crate::keys::{KeySource, KeysUnavailable};

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The issuer (`iss`), exactly as in the authorization server's metadata.
    pub issuer: String,
    /// This resource's identifier, which `aud` must name.
    pub audience: String,
    /// Tolerated clock difference with the issuer for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: i64,
    pub dpop: DpopPolicy,
    /// Keys this resource's DPoP nonces (only used when `dpop.require_nonce`).
    pub dpop_nonce_key: [u8; 32],
    /// Verified tokens remembered until they expire (0: none).
    pub token_cache_entries: usize,
}

impl VerifierConfig {
    /// Defaults for a relying app: 30 s leeway, proofs up to 60 s old, nonces not required (a
    /// proof out of that window still gets [`VerifyError::UseDpopNonce`]: answer it with
    /// [`Verifier::fresh_dpop_nonce`]), 10,000 verified tokens remembered.
    pub fn relying_app(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 30,
            dpop: DpopPolicy {
                require_nonce: false,
                nonce_lifetime_ms: 300_000,
                max_age_ms: 60_000,
                skew_ms: 30_000,
            },
            dpop_nonce_key: random_key(),
            token_cache_entries: 10_000,
        }
    }
}

/// 256 bits from the system's random source: a nonce key no other party needs to know.
#[expect(
    clippy::expect_used,
    reason = "start-up; AWS-LC's RAND_bytes aborts rather than return without random bytes"
)]
fn random_key() -> [u8; 32] {
    let mut key = [0; 32];
    aws_lc_rs::rand::fill(&mut key).expect("the system's random source");
    key
}

/// Why a request's token was refused, in RFC 6750 §3.1 and RFC 9449 §7.1 terms. Descriptions
/// are fixed texts, safe to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// RFC 6750 §3.1: the request carries no credentials (answer with a bare challenge).
    #[error("no access token")]
    MissingToken,
    /// RFC 6750 §3.1: the Authorization header is malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6750 §3.1: the token is expired, malformed, not ours, or misused.
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// RFC 9449 §7.1: the DPoP proof is missing or fails a check.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §9: the proof needs a nonce (nonces are required, its `iat` is out of the
    /// window, or its nonce is not a current one); answer with [`Verifier::fresh_dpop_nonce`].
    #[error("use_dpop_nonce")]
    UseDpopNonce,
    /// The issuer's keys could not be fetched: try again later (503).
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
}

impl From<KeysUnavailable> for VerifyError {
    fn from(_: KeysUnavailable) -> Self {
        Self::KeysUnavailable
    }
}

impl From<DpopError> for VerifyError {
    fn from(err: DpopError) -> Self {
        match err {
            DpopError::Invalid(description) => Self::InvalidDpopProof(description),
            DpopError::UseNonce => Self::UseDpopNonce,
        }
    }
}

impl VerifyError {
    /// The `error` attribute of the challenge, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken | Self::KeysUnavailable => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
        }
    }

    /// A fixed `error_description`.
    pub fn description(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(d) | Self::InvalidToken(d) | Self::InvalidDpopProof(d) => Some(d),
            Self::UseDpopNonce => Some("a DPoP nonce is required; use the DPoP-Nonce header"),
            Self::MissingToken | Self::KeysUnavailable => None,
        }
    }
}

/// One request to a protected resource, as the verifier needs it (no HTTP framework types).
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// Every `DPoP` header value.
    pub dpop: &'a [String],
    pub method: &'a str,
    /// The resource's absolute URL, from configuration (never from request headers).
    pub url: &'a str,
}

impl<'a> ResourceRequest<'a> {
    /// What the DPoP checks need of this request, with the access token the proof must hash.
    pub fn dpop_request(&self, access_token: &'a str) -> DpopRequest<'a> {
        DpopRequest {
            proofs: self.dpop,
            method: self.method,
            url: self.url,
            access_token: Some(access_token),
        }
    }
}

/// A request whose token and proof passed.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Arc<AccessClaims>,
    /// The proof: its `jti` must be recorded (scope [`DpopProof::replay_scope`]) until
    /// `replay_until_ms`, and a second use refused.
    pub proof: DpopProof,
}

impl Verified {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scope.split(' ').any(|s| s == scope)
    }
}

/// Verifies access tokens and DPoP proofs against one issuer, for one resource.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway_ms: i64,
    keys: Arc<dyn KeySource>,
    dpop: DpopVerifier,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
}

/// Longest token accepted, before any decoding.
const MAX_TOKEN_LEN: usize = jose::MAX_JWS_LEN;

impl Verifier {
    /// A verifier for `config`'s issuer and resource, with the issuer's keys from `keys` and the
    /// time from `clock`.
    pub fn new(config: VerifierConfig, keys: Arc<dyn KeySource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            issuer: config.issuer,
            audience: config.audience,
            leeway_ms: config.leeway_secs.max(0) * 1000,
            keys,
            dpop: DpopVerifier::new(config.dpop, config.dpop_nonce_key),
            clock,
            cache: TokenCache::new(config.token_cache_entries),
        }
    }

    /// The algorithms accepted, for the `algs` challenge attribute (RFC 9449 §7.1).
    pub fn algs() -> String {
        JwsAlg::all().join(" ")
    }

    /// A fresh nonce for the `DPoP-Nonce` header of every response, when nonces are required.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.required_nonce(self.now_ms())
    }

    /// A fresh nonce for the answer to [`VerifyError::UseDpopNonce`], which comes whether or not
    /// nonces are required: a proof whose `iat` is out of the window gets one (RFC 9449 §9).
    pub fn fresh_dpop_nonce(&self) -> String {
        self.dpop.nonce(self.now_ms())
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// RFC 9449 §7.1: a DPoP-bound access token under the `DPoP` scheme, and its proof.
    pub async fn verify(&self, req: &ResourceRequest<'_>) -> Result<Verified, VerifyError> {
        let token = dpop_token(req.authorization)?;
        let claims = self.verify_access_token(token).await?;
        let Some(cnf) = &claims.cnf else {
            return Err(VerifyError::InvalidToken(
                "the access token is not bound to a DPoP key",
            ));
        };
        let proof = self
            .dpop
            .check(&req.dpop_request(token), self.now_ms())?
            .ok_or(VerifyError::InvalidDpopProof(
                "a DPoP proof is required with a DPoP-bound token",
            ))?;
        if proof.jkt != cnf.jkt {
            return Err(VerifyError::InvalidToken(
                "the access token is bound to another key than the proof's",
            ));
        }
        Ok(Verified { claims, proof })
    }

    /// RFC 9068 §4: the token alone (for apps that take bearer tokens or check DPoP
    /// themselves). A token verified before is recognised by its SHA-256 until it expires.
    pub async fn verify_access_token(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::InvalidToken("the access token is too long"));
        }
        let now = self.now_ms();
        let digest = self.cache.enabled().then(|| jose::sha256_b64(token));
        if let Some(claims) = digest.as_deref().and_then(|d| self.cache.get(d, now)) {
            return Ok(claims);
        }
        let claims = Arc::new(self.check_access_token(token, now).await?);
        if let Some(digest) = digest {
            self.cache.insert(
                digest,
                Arc::clone(&claims),
                claims.exp.saturating_mul(1000) + self.leeway_ms,
                now,
            );
        }
        Ok(claims)
    }

    async fn check_access_token(&self, token: &str, now: i64) -> Result<AccessClaims, VerifyError> {
        let invalid = VerifyError::InvalidToken;
        let jws = CompactJws::parse(token)
            .map_err(|_| invalid("the access token is not a JWS with an accepted algorithm"))?;
        let typ = jws.header_str("typ").unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(invalid("the access token's typ must be at+jwt"));
        }
        let kid = jws
            .header_str("kid")
            .ok_or(invalid("the access token has no kid"))?;
        let key = self
            .keys
            .key(kid, now)
            .await?
            .ok_or(invalid("the access token's signing key is not published"))?;
        if !key.verify(&jws) {
            return Err(invalid("the access token's signature does not verify"));
        }
        if jws.claim_str("iss") != Some(self.issuer.as_str()) {
            return Err(invalid("the access token comes from another issuer"));
        }
        let exp = jws
            .claim_time("exp")
            .ok_or(invalid("the access token has no exp"))?;
        if now >= exp.saturating_mul(1000).saturating_add(self.leeway_ms) {
            return Err(invalid("the access token has expired"));
        }
        for name in ["iat", "nbf"] {
            if jws
                .claim_time(name)
                .is_some_and(|t| t.saturating_mul(1000) > now + self.leeway_ms)
            {
                return Err(invalid("the access token is not valid yet"));
            }
        }
        let mut claims = jws.claims;
        // RFC 7519 §4.1.3: one audience as a string, or several as an array.
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(invalid("the access token is not meant for this resource"));
        }
        claims.insert("aud".into(), Value::String(self.audience.clone()));
        serde_json::from_value(Value::Object(claims))
            .map_err(|_| invalid("the access token lacks a required claim"))
    }
}

/// The token of `Authorization: DPoP <token>` (RFC 9449 §7.1; the scheme is case-insensitive,
/// the token is token68).
fn dpop_token(authorization: Option<&str>) -> Result<&str, VerifyError> {
    let header = authorization.ok_or(VerifyError::MissingToken)?;
    let Some((scheme, token)) = header.split_once(' ') else {
        return Err(VerifyError::InvalidRequest(
            "the Authorization header is malformed",
        ));
    };
    if !scheme.eq_ignore_ascii_case("DPoP") {
        return Err(VerifyError::InvalidToken(
            "this resource takes DPoP-bound tokens under the DPoP scheme only",
        ));
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let token68 = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !token68 {
        return Err(VerifyError::InvalidRequest(
            "the Authorization header is malformed",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dpop_scheme_is_required_and_case_insensitive() {
        assert_eq!(dpop_token(Some("dpop abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(dpop_token(Some("DPoP  abc")), Ok("abc"));
        assert_eq!(dpop_token(None), Err(VerifyError::MissingToken));
        assert!(matches!(
            dpop_token(Some("Bearer abc")),
            Err(VerifyError::InvalidToken(_))
        ));
        assert!(matches!(
            dpop_token(Some("DPoP")),
            Err(VerifyError::InvalidRequest(_))
        ));
        assert!(matches!(
            dpop_token(Some("DPoP a b")),
            Err(VerifyError::InvalidRequest(_))
        ));
    }
}
