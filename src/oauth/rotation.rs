//! Refresh tokens in counter form, and the rule that tells a family's current token from a used
//! one (RFC 9700 §4.14.2: rotation with reuse detection).
//!
//! A token names its family and its place in the family's sequence, under a MAC keyed from the
//! master key: `pgr_` + base64url(version ‖ counter ‖ MAC ‖ family id); the prefix lets secret
//! scanners recognise a leaked one. The family keeps only the counter of its current token
//! (`refresh_families`). A token the MAC vouches for, with an older counter than the family's,
//! was issued by pairgate and already used: a reuse. So reuse is detected for the family's whole
//! life without a row per used token. The database never holds a usable token: rebuilding one
//! needs the master key.
//!
//! Tokens from before the counter form (`pgr_` + 32 random bytes) are found by their SHA-256
//! hash, which the migration moved into their family's row at counter 0.

use aws_lc_rs::hmac;

use crate::crypto::jose;
use crate::crypto::tokens;
use crate::ids::DeviceSerial;
use crate::store::registry;
use crate::store::tokens::DeviceTokenState;
use crate::store::tokens::{self as stored, FamilyRecord};
use crate::store::{StoreError, Tx};

/// The first byte of a counter-form token's payload.
const VERSION: u8 = 1;
const COUNTER_LEN: usize = 8;
const MAC_LEN: usize = 32;
const HEADER_LEN: usize = 1 + COUNTER_LEN + MAC_LEN;

/// Mints and checks counter-form refresh tokens.
pub struct RefreshTokens {
    key: hmac::Key,
}

/// What a presented refresh token claims to be, once its MAC has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A counter-form token pairgate issued.
    Counter { family_id: String, counter: i64 },
    /// Anything else: looked up as a token from before the counter form, by this hash.
    Legacy { hash: String },
}

impl Presented {
    /// The counter the token stands at; a token from before the counter form stands at 0.
    pub fn counter(&self) -> i64 {
        match self {
            Self::Counter { counter, .. } => *counter,
            Self::Legacy { .. } => 0,
        }
    }
}

/// How a token stands against its family's current counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The family's current token: it may be used (once).
    Current,
    /// A token the family has moved past: it was used before.
    Used,
}

/// Compares a presented counter with the family's. A counter ahead of the family's is only
/// possible when the database was restored from a backup taken before that token was issued:
/// pairgate issued it (the MAC says so), and no later token of the family can exist, so it is
/// the current one. Treating it as such keeps devices paired across a restore.
pub fn standing(presented: i64, family: i64) -> Standing {
    if presented >= family {
        Standing::Current
    } else {
        Standing::Used
    }
}

/// The family a presented token belongs to, if it still exists.
pub fn find_family(
    tx: &mut Tx<'_>,
    presented: &Presented,
) -> Result<Option<FamilyRecord>, StoreError> {
    match presented {
        Presented::Counter { family_id, .. } => stored::find_family(tx, family_id),
        Presented::Legacy { hash } => stored::find_legacy_family(tx, hash),
    }
}

/// [`find_family`], with the token state of the device it belongs to (`None` for a service
/// client's family): what a refresh reads, in one statement for a counter-form token.
pub fn find_family_and_device(
    tx: &mut Tx<'_>,
    presented: &Presented,
) -> Result<Option<(FamilyRecord, Option<DeviceTokenState>)>, StoreError> {
    match presented {
        Presented::Counter { family_id, .. } => stored::find_family_and_device(tx, family_id),
        Presented::Legacy { hash } => {
            let Some(family) = stored::find_legacy_family(tx, hash)? else {
                return Ok(None);
            };
            let serial = DeviceSerial::from(family.client_id.as_str());
            let device = registry::device_token_state(tx, &serial)?;
            Ok(Some((family, device)))
        }
    }
}

impl RefreshTokens {
    /// `key`: a key derived from the master key for this purpose only.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }

    /// The token of `family_id` at `counter` (counters start at 1).
    pub fn mint(&self, family_id: &str, counter: i64) -> String {
        let counter = counter.to_be_bytes();
        let tag = hmac::sign(&self.key, &signed_part(&counter, family_id.as_bytes()));
        let mut payload = Vec::with_capacity(HEADER_LEN + family_id.len());
        payload.push(VERSION);
        payload.extend_from_slice(&counter);
        payload.extend_from_slice(tag.as_ref());
        payload.extend_from_slice(family_id.as_bytes());
        format!("pgr_{}", jose::b64(payload))
    }

    /// Reads a presented token. `None` for a counter-form token whose MAC does not verify (it
    /// was not issued by pairgate, or not with this master key); anything that is not counter
    /// form is left to the lookup of tokens from before it.
    pub fn parse(&self, token: &str) -> Option<Presented> {
        let legacy = || {
            Some(Presented::Legacy {
                hash: tokens::hash_token(token),
            })
        };
        let Some(payload) = token.strip_prefix("pgr_").and_then(jose::b64_decode) else {
            return legacy();
        };
        if payload.len() <= HEADER_LEN || payload[0] != VERSION {
            return legacy();
        }
        let (counter, rest) = payload[1..].split_at(COUNTER_LEN);
        let (tag, family_id) = rest.split_at(MAC_LEN);
        hmac::verify(&self.key, &signed_part(counter, family_id), tag).ok()?;
        let counter = i64::from_be_bytes(counter.try_into().ok()?);
        Some(Presented::Counter {
            family_id: String::from_utf8(family_id.to_vec()).ok()?,
            counter,
        })
    }
}

/// What the MAC covers: everything else the token carries (version, counter, family id).
fn signed_part(counter: &[u8], family_id: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(1 + counter.len() + family_id.len());
    message.push(VERSION);
    message.extend_from_slice(counter);
    message.extend_from_slice(family_id);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(seed: u8) -> RefreshTokens {
        RefreshTokens::new([seed; 32])
    }

    #[test]
    fn a_minted_token_reads_back_as_its_family_and_counter() {
        let c = codec(1);
        let token = c.mint("fam-Zx_9", 41);
        assert!(token.starts_with("pgr_"));
        assert_eq!(
            c.parse(&token),
            Some(Presented::Counter {
                family_id: "fam-Zx_9".into(),
                counter: 41
            })
        );
        assert_ne!(
            c.mint("fam-Zx_9", 42),
            token,
            "each counter has its own token"
        );
    }

    #[test]
    fn a_token_under_another_key_or_altered_is_refused() {
        let token = codec(1).mint("family", 7);
        assert_eq!(codec(2).parse(&token), None, "another master key");
        let mut payload = jose::b64_decode(&token[4..]).unwrap();
        // Move the counter back by one: a token the MAC does not vouch for.
        payload[COUNTER_LEN] ^= 0x01;
        let altered = format!("pgr_{}", jose::b64(&payload));
        assert_eq!(codec(1).parse(&altered), None);
        let mut payload = jose::b64_decode(&token[4..]).unwrap();
        *payload.last_mut().unwrap() ^= 0x20;
        let other_family = format!("pgr_{}", jose::b64(&payload));
        assert_eq!(codec(1).parse(&other_family), None);
    }

    #[test]
    fn anything_else_is_looked_up_by_its_hash() {
        let c = codec(1);
        let legacy = format!("pgr_{}", jose::b64([9u8; 32]));
        for token in [legacy.as_str(), "pgr_", "pgr_!!!", "not-a-refresh-token"] {
            assert_eq!(
                c.parse(token),
                Some(Presented::Legacy {
                    hash: tokens::hash_token(token)
                }),
                "{token}"
            );
        }
        assert_eq!(c.parse(&legacy).unwrap().counter(), 0);
    }

    #[test]
    fn only_an_older_counter_is_a_reuse() {
        assert_eq!(standing(3, 3), Standing::Current);
        assert_eq!(standing(4, 3), Standing::Current, "after a restore");
        assert_eq!(standing(2, 3), Standing::Used);
        assert_eq!(standing(0, 1), Standing::Used, "a legacy token, rotated");
    }
}
