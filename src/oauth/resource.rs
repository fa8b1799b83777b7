//! The resource-server side of pairgate's own access tokens, for pairgate's APIs (ERP, and
//! whoever else needs it): `Authorization: Bearer` (RFC 6750 §2.1) or `Authorization: DPoP` with a
//! proof (RFC 9449 §7): the token must be active (signature, `typ`, `iss`, `exp`, revocation,
//! device generation), meant for this API (`aud`), and a DPoP-bound token must come with a proof
//! by its key, bound to this request (`htm`, `htu`, `ath`) and never seen before (`jti`).
//! Scope checks are the caller's: they differ per API.

use super::{OAuth, OAuthError};
use crate::store::StoreError;
use crate::verifier::dpop::DpopError;
use crate::verifier::{AccessClaims, ResourceRequest};

/// How the token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    Bearer,
    Dpop,
}

/// Why a resource request was refused, per RFC 6750 §3.1 and RFC 9449 §7.1. The `&'static str`
/// payloads are fixed, client-safe descriptions.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// No credentials (or an unknown scheme): 401 with a bare challenge, no error code.
    #[error("no access token")]
    Missing,
    /// RFC 6750 §3.1 `invalid_request`: a malformed Authorization header.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6750 §3.1 `invalid_token`: expired, revoked, malformed, foreign or not for this API.
    #[error("invalid_token: {1}")]
    InvalidToken(TokenScheme, &'static str),
    /// RFC 9449 §7.1 `invalid_dpop_proof`.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §8: the proof needs a server nonce; answer with a fresh `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseDpopNonce,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An authorised request: the token's claims and how it was presented.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub claims: AccessClaims,
    pub scheme: TokenScheme,
}

impl OAuth {
    /// Authorises a request to one of pairgate's APIs with one of pairgate's access tokens.
    pub async fn authorize_resource(
        &self,
        req: &ResourceRequest<'_>,
    ) -> Result<Authorized, ResourceError> {
        let header = req.authorization.ok_or(ResourceError::Missing)?;
        let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            TokenScheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            TokenScheme::Dpop
        } else {
            return Err(ResourceError::Missing);
        };
        let token = token.trim();
        // RFC 6750 §2.1 b64token.
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        {
            return Err(ResourceError::InvalidRequest(
                "the Authorization header does not carry a well-formed token",
            ));
        }
        let invalid = |reason| ResourceError::InvalidToken(scheme, reason);
        let claims = self
            .active_access_token(token)
            .await
            .map_err(|e| match e {
                OAuthError::Store(e) => ResourceError::Store(e),
                _ => invalid("the access token is not active"),
            })?
            .ok_or(invalid("the access token is not active"))?;
        if claims.aud != self.audience {
            return Err(invalid("the access token is not meant for this API"));
        }
        match (scheme, &claims.cnf) {
            (TokenScheme::Bearer, None) => {}
            (TokenScheme::Bearer, Some(_)) => {
                return Err(invalid(
                    "the access token is DPoP-bound: send it with the DPoP scheme and a proof",
                ));
            }
            (TokenScheme::Dpop, None) => {
                return Err(invalid("the access token is not DPoP-bound: use Bearer"));
            }
            (TokenScheme::Dpop, Some(cnf)) => {
                self.check_resource_proof(req, token, &cnf.jkt).await?;
            }
        }
        Ok(Authorized { claims, scheme })
    }

    /// RFC 9449 §7.1 and §4.3, including the jti replay check against the shared store.
    async fn check_resource_proof(
        &self,
        req: &ResourceRequest<'_>,
        token: &str,
        jkt: &str,
    ) -> Result<(), ResourceError> {
        let proof = self
            .dpop
            .check(&req.dpop_request(token), self.now_ms())
            .map_err(|e| match e {
                DpopError::UseNonce => ResourceError::UseDpopNonce,
                DpopError::Invalid(d) => ResourceError::InvalidDpopProof(d),
            })?
            .ok_or(ResourceError::InvalidDpopProof(
                "a DPoP-bound token needs a DPoP proof",
            ))?;
        if proof.jkt != jkt {
            return Err(ResourceError::InvalidDpopProof(
                "the DPoP proof is not signed by the key the token is bound to",
            ));
        }
        let fresh = self
            .store
            .write(move |tx| {
                crate::store::replay::remember_jti(
                    tx,
                    &proof.replay_scope(),
                    &proof.jti,
                    proof.replay_until_ms,
                )
            })
            .await?;
        if fresh {
            Ok(())
        } else {
            Err(ResourceError::InvalidDpopProof(
                "the DPoP proof was used before",
            ))
        }
    }
}
