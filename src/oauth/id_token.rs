//! OpenID Connect ID tokens (Core §2) and the UserInfo endpoint (Core §5.3): who the person is,
//! for an app. `sub` is `user:ID`, the same in every token, and never reused. `tenant_id` and
//! `roles` say where the person works and what they may do there; `amr` and `acr` say how they
//! proved it (RFC 8176: `pwd`, `otp`, `hwk`, and `mfa` for two of them).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::authorize::acr_of;
use super::keyring::KeyRingError;
use super::minting::Minter;
use super::{OAuth, OAuthError};
use crate::crypto::jose::CompactJws;
use crate::ids::{TenantId, UserId};
use crate::store::StoreError;
use crate::store::registry::ActiveStatus;
use crate::store::users::{self, UserRecord};

/// What an ID token says, beside the person.
pub struct IdTokenFacts<'a> {
    pub user: &'a UserRecord,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time_ms: i64,
    /// Space-separated, as the session recorded them.
    pub amr: &'a str,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    amr: Vec<String>,
    acr: &'static str,
    #[serde(flatten)]
    person: Map<String, Value>,
}

/// How long an ID token is valid: it says who signed in, once; apps keep their own sessions.
const ID_TOKEN_LIFETIME_SECS: i64 = 300;

/// The `sub` of a person.
pub fn subject(user: UserId) -> String {
    format!("user:{user}")
}

/// The person a `sub` names, if it names one.
pub fn user_of(sub: &str) -> Option<UserId> {
    sub.strip_prefix("user:")?
        .parse::<i64>()
        .ok()
        .map(UserId::from)
}

/// The `amr` values of a session's methods, with `mfa` when a second factor joined the first.
fn amr_values(amr: &str) -> Vec<String> {
    let mut values: Vec<String> = amr
        .split(' ')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let second = values.iter().any(|m| m == "otp" || m == "hwk");
    if second && values.len() > 1 {
        values.push("mfa".to_owned());
    }
    values
}

/// The person's claims for these scopes: `tenant_id` and `roles` always; `email` and
/// `email_verified` with `email`; `name` with `profile`.
fn person_claims(user: &UserRecord, scope: &str) -> Map<String, Value> {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let mut claims = Map::new();
    claims.insert("tenant_id".into(), json!(user.tenant_id.map(TenantId::get)));
    claims.insert("roles".into(), json!([user.role.as_str()]));
    if has("email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if has("profile") {
        claims.insert("name".into(), json!(user.name));
    }
    claims
}

/// Signs an ID token (`typ: JWT`) with the key ring's current key.
pub(super) fn sign(
    minter: &Minter,
    facts: &IdTokenFacts<'_>,
    now_ms: i64,
) -> Result<String, KeyRingError> {
    let iat = now_ms.div_euclid(1000);
    let amr = amr_values(facts.amr);
    let claims = IdTokenClaims {
        iss: minter.issuer(),
        sub: subject(facts.user.id),
        aud: facts.client_id,
        azp: facts.client_id,
        exp: iat + ID_TOKEN_LIFETIME_SECS,
        iat,
        auth_time: facts.auth_time_ms.div_euclid(1000),
        nonce: facts.nonce,
        acr: acr_of(&amr),
        amr,
        person: person_claims(facts.user, facts.scope),
    };
    minter.sign("JWT", &claims, now_ms)
}

/// An ID token pairgate signed, as `id_token_hint` carries it back (RP-initiated logout): its
/// signature and issuer are checked, its expiry is not (OpenID Connect RP-Initiated Logout §2).
#[derive(Debug, Clone)]
pub struct Hint {
    pub user: UserId,
    pub client_id: String,
}

impl OAuth {
    /// UserInfo (Core §5.3): the claims of `user`, for the scopes of their token, as of now;
    /// `None` when the person is gone or disabled.
    pub async fn userinfo(&self, user: UserId, scope: &str) -> Result<Option<Value>, StoreError> {
        let found = self.store.read(move |tx| users::find(tx, user)).await?;
        Ok(found.filter(|u| u.status == ActiveStatus::Active).map(|u| {
            let mut body = person_claims(&u, scope);
            body.insert("sub".into(), json!(subject(u.id)));
            Value::Object(body)
        }))
    }

    /// Checks an `id_token_hint`: signed by one of pairgate's published keys, issued by it.
    pub async fn id_token_hint(&self, token: &str) -> Result<Option<Hint>, OAuthError> {
        let Ok(jws) = CompactJws::parse(token) else {
            return Ok(None);
        };
        let Some(kid) = jws.header_str("kid").map(str::to_owned) else {
            return Ok(None);
        };
        let Some(key) = self.keys.find_key(&kid, self.now_ms()).await? else {
            return Ok(None);
        };
        if !key.verify(&jws) || jws.claim_str("iss") != Some(self.issuer.as_str()) {
            return Ok(None);
        }
        let user = jws.claim_str("sub").and_then(user_of);
        let client_id = jws.claim_str("aud").map(str::to_owned);
        Ok(user
            .zip(client_id)
            .map(|(user, client_id)| Hint { user, client_id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_factor_adds_mfa() {
        assert_eq!(amr_values("pwd"), ["pwd"]);
        assert_eq!(amr_values("pwd otp"), ["pwd", "otp", "mfa"]);
        assert_eq!(amr_values("pwd hwk"), ["pwd", "hwk", "mfa"]);
        assert_eq!(amr_values("hwk"), ["hwk"], "a passkey alone is one method");
    }

    #[test]
    fn subjects_name_people_only() {
        assert_eq!(user_of(&subject(UserId::from(42))), Some(UserId::from(42)));
        assert_eq!(user_of("device:SN-1"), None);
        assert_eq!(user_of("client:erp"), None);
        assert_eq!(user_of("user:x"), None);
    }
}
