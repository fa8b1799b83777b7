//! Client authentication at the token, device authorization, introspection and revocation
//! endpoints: `private_key_jwt` (RFC 7523 §2.2, §3) for devices and service clients, and
//! `client_secret_basic` / `client_secret_post` (RFC 6749 §2.3.1) for service clients.
//!
//! The signature and claims are checked here; the assertion's `jti` is returned so that the
//! caller's transaction records it (a replay then fails on the replay store's primary key).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::OAuthError;
use crate::crypto::jose::{CompactJws, PublicJwk, parse_jwk_set};
use crate::store::registry::{ClientKind, ClientRecord};

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credentials a request carried, however it carried them.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (already percent-decoded).
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

/// How a client proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    PrivateKeyJwt,
    SecretBasic,
    SecretPost,
    /// A public app named by `client_id` alone (RFC 6749 §2.1): PKCE protects its codes.
    None,
}

/// What the request claims before anything is checked: the client to load, and how.
#[derive(Debug)]
pub enum Claimed {
    Assertion {
        client_id: String,
        jws: CompactJws,
    },
    Secret {
        client_id: String,
        secret: String,
        method: AuthMethod,
    },
    /// `client_id` alone: only a public app may be that.
    Public {
        client_id: String,
    },
}

/// A client that proved itself; `assertion_jti` still has to be recorded by the caller.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: ClientRecord,
    pub method: AuthMethod,
    pub assertion_jti: Option<AssertionJti>,
    /// The keys that verified the assertion came from the client cache: the write transaction
    /// confirms that the client is still active with those keys before it issues anything.
    pub keys_from_cache: bool,
}

#[derive(Debug, Clone)]
pub struct AssertionJti {
    pub scope: String,
    pub jti: String,
    pub remember_until_ms: i64,
}

/// The checks that depend on configuration.
#[derive(Debug, Clone)]
pub struct AssertionPolicy {
    /// Accepted `aud` values: the issuer and the token endpoint URL.
    pub audiences: Vec<String>,
    pub max_lifetime_ms: i64,
    pub skew_ms: i64,
}

fn invalid(reason: &'static str, basic: bool) -> OAuthError {
    OAuthError::InvalidClient { reason, basic }
}

/// RFC 6749 Appendix A.1: `client-id = *VSCHAR` (%x20-7E). Anything else names no client, and
/// never reaches the database (PostgreSQL refuses NUL in text, which would be a 500).
fn plausible_client_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl ClientCredentials {
    /// Works out which client the request claims to be (RFC 6749 §2.3: exactly one method).
    pub fn claimed(&self) -> Result<Claimed, OAuthError> {
        let claimed = self.claimed_unchecked()?;
        let client_id = claimed.client_id();
        if !plausible_client_id(client_id) {
            let basic = matches!(
                claimed,
                Claimed::Secret {
                    method: AuthMethod::SecretBasic,
                    ..
                }
            );
            return Err(invalid("unknown or disabled client", basic));
        }
        Ok(claimed)
    }

    fn claimed_unchecked(&self) -> Result<Claimed, OAuthError> {
        let basic = self.basic.is_some();
        let methods = usize::from(basic)
            + usize::from(self.client_secret.is_some())
            + usize::from(self.assertion.is_some() || self.assertion_type.is_some());
        if methods > 1 {
            return Err(OAuthError::InvalidRequest(
                "use exactly one client authentication method",
            ));
        }
        if let Some((id, secret)) = &self.basic {
            if self.client_id.as_ref().is_some_and(|c| c != id) {
                return Err(invalid(
                    "client_id does not match the authenticated client",
                    true,
                ));
            }
            return Ok(Claimed::Secret {
                client_id: id.clone(),
                secret: secret.clone(),
                method: AuthMethod::SecretBasic,
            });
        }
        if let Some(secret) = &self.client_secret {
            let client_id = self
                .client_id
                .clone()
                .ok_or(invalid("client_id is required", false))?;
            return Ok(Claimed::Secret {
                client_id,
                secret: secret.clone(),
                method: AuthMethod::SecretPost,
            });
        }
        match (&self.assertion_type, &self.assertion) {
            (Some(t), Some(a)) => {
                if t != JWT_BEARER_ASSERTION {
                    return Err(invalid("unsupported client_assertion_type", false));
                }
                let jws = CompactJws::parse(a).map_err(|_| {
                    invalid(
                        "the client assertion is not a valid JWS with an allowed alg",
                        false,
                    )
                })?;
                let iss = jws.claim_str("iss");
                let sub = jws.claim_str("sub");
                let client_id = match (iss, sub) {
                    (Some(iss), Some(sub)) if iss == sub => iss.to_owned(),
                    _ => {
                        return Err(invalid(
                            "the client assertion's iss and sub must both be the client_id",
                            false,
                        ));
                    }
                };
                if self.client_id.as_ref().is_some_and(|c| *c != client_id) {
                    return Err(invalid(
                        "client_id does not match the client assertion",
                        false,
                    ));
                }
                Ok(Claimed::Assertion { client_id, jws })
            }
            (None, None) => match &self.client_id {
                Some(client_id) => Ok(Claimed::Public {
                    client_id: client_id.clone(),
                }),
                None => Err(invalid("client authentication is required", false)),
            },
            _ => Err(OAuthError::InvalidRequest(
                "client_assertion and client_assertion_type go together",
            )),
        }
    }
}

impl Claimed {
    /// The client the request claims to be.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Assertion { client_id, .. }
            | Self::Secret { client_id, .. }
            | Self::Public { client_id } => client_id,
        }
    }
}

/// Hex SHA-256 of a client secret, as stored. Secrets are 256-bit random values, so a fast hash
/// is enough (there is nothing to brute-force).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks the claimed credentials against the registered client.
pub fn verify(
    claimed: Claimed,
    client: Option<ClientRecord>,
    policy: &AssertionPolicy,
    now_ms: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    match claimed {
        Claimed::Secret { secret, method, .. } => {
            let basic = method == AuthMethod::SecretBasic;
            // Hash even for unknown clients, so timing does not tell which ids exist.
            let presented = hash_secret(&secret);
            let client = client
                .filter(|c| c.active)
                .ok_or(invalid("unknown or disabled client", basic))?;
            let stored = client.secret_hash.as_deref().unwrap_or("");
            let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
            if !matches || stored.is_empty() || client.kind == ClientKind::Device {
                return Err(invalid("client authentication failed", basic));
            }
            Ok(AuthenticatedClient {
                client,
                method,
                assertion_jti: None,
                keys_from_cache: false,
            })
        }
        Claimed::Assertion { client_id, jws } => {
            authenticate_assertion(client, &client_id, &jws, policy, now_ms).map(|(a, _)| a)
        }
        Claimed::Public { .. } => {
            // Only an app registered with no credential may go without one; anyone else sending
            // a bare client_id has not authenticated.
            let client = client
                .filter(|c| {
                    c.active
                        && c.kind == ClientKind::App
                        && c.jwks.is_none()
                        && c.secret_hash.is_none()
                })
                .ok_or(invalid("client authentication is required", false))?;
            Ok(AuthenticatedClient {
                client,
                method: AuthMethod::None,
                assertion_jti: None,
                keys_from_cache: false,
            })
        }
    }
}

/// Checks a client assertion against the client as the database holds it; also returns the
/// client's parsed keys (for the client cache).
pub fn authenticate_assertion(
    client: Option<ClientRecord>,
    client_id: &str,
    jws: &CompactJws,
    policy: &AssertionPolicy,
    now_ms: i64,
) -> Result<(AuthenticatedClient, Vec<PublicJwk>), OAuthError> {
    let client = client
        .filter(|c| c.active)
        .ok_or(invalid("unknown or disabled client", false))?;
    let keys = registered_keys(&client)?;
    let authenticated = verify_assertion(client, &keys, client_id, jws, policy, now_ms)?;
    Ok((authenticated, keys))
}

/// An active client's registered public keys, parsed (what [`verify_assertion`] checks with).
fn registered_keys(client: &ClientRecord) -> Result<Vec<PublicJwk>, OAuthError> {
    let jwks_json = client
        .jwks
        .as_deref()
        .ok_or(invalid("this client has no registered keys", false))?;
    serde_json::from_str(jwks_json)
        .ok()
        .and_then(|v| parse_jwk_set(&v).ok())
        .ok_or(invalid("this client's registered keys are unusable", false))
}

/// Checks a client assertion (RFC 7523) from `client`, an active client whose registered keys
/// are `keys`.
pub fn verify_assertion(
    client: ClientRecord,
    keys: &[PublicJwk],
    client_id: &str,
    jws: &CompactJws,
    policy: &AssertionPolicy,
    now_ms: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let kid = jws.header_str("kid");
    let verified = keys
        .iter()
        .filter(|k| k.alg() == jws.alg)
        .filter(|k| kid.is_none() || k.kid().is_none() || k.kid() == kid)
        .any(|k| k.verify(jws));
    if !verified {
        return Err(invalid(
            "the client assertion's signature does not verify",
            false,
        ));
    }
    let jti = check_assertion_claims(jws, policy, now_ms)?;
    let exp = jws.claim_time("exp").unwrap_or(0).saturating_mul(1000);
    Ok(AuthenticatedClient {
        assertion_jti: Some(AssertionJti {
            scope: format!("client_assertion:{client_id}"),
            jti,
            // Past exp by the skew: the assertion is accepted that long, so its jti must be
            // refused that long.
            remember_until_ms: exp.saturating_add(policy.skew_ms),
        }),
        client,
        method: AuthMethod::PrivateKeyJwt,
        keys_from_cache: false,
    })
}

/// RFC 7523 §3 claim checks (iss/sub were matched when the client was claimed).
fn check_assertion_claims(
    jws: &CompactJws,
    policy: &AssertionPolicy,
    now_ms: i64,
) -> Result<String, OAuthError> {
    let aud_ok = match jws.claims.get("aud") {
        Some(serde_json::Value::String(a)) => policy.audiences.iter().any(|x| x == a),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str())
            .any(|a| policy.audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid(
            "the client assertion's aud must be the issuer or the token endpoint",
            false,
        ));
    }
    let exp = jws
        .claim_time("exp")
        .ok_or(invalid("the client assertion needs an exp", false))?
        .saturating_mul(1000);
    if exp <= now_ms - policy.skew_ms {
        return Err(invalid("the client assertion has expired", false));
    }
    let start = match jws.claim_time("iat") {
        Some(iat) => {
            let iat = iat.saturating_mul(1000);
            if iat > now_ms + policy.skew_ms {
                return Err(invalid(
                    "the client assertion's iat is in the future",
                    false,
                ));
            }
            iat
        }
        None => now_ms,
    };
    // Saturating: an iat near i64::MIN must not wrap the lifetime into a small number.
    if exp.saturating_sub(start) > policy.max_lifetime_ms {
        return Err(invalid(
            "the client assertion's lifetime is too long",
            false,
        ));
    }
    if let Some(nbf) = jws.claim_time("nbf")
        && nbf.saturating_mul(1000) > now_ms + policy.skew_ms
    {
        return Err(invalid("the client assertion is not valid yet", false));
    }
    jws.claim_str("jti")
        // Control characters (NUL above all) cannot be stored as text on PostgreSQL.
        .filter(|j| !j.is_empty() && j.len() <= 256 && !j.chars().any(char::is_control))
        .map(str::to_owned)
        .ok_or(invalid("the client assertion needs a jti", false))
}
