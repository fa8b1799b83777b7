//! Attempt budgets for user codes (RFC 8628 §5.1: a user code is short, so guessing must be
//! slow). Every path that takes a code counts one attempt, before it looks at the code, in
//! fixed ten-minute windows: per person, per session, per address, per network and overall.
//!
//! The overall budget bounds guessing spread over many addresses, and anyone who can send
//! requests can use it up. Two things make that expensive without giving the protection up:
//! a network (an IPv4 /24, an IPv6 /48) spends at most its own budget, so an attacker must come
//! from many networks at once; and addresses that have approved a pairing before ("proven")
//! neither count towards the overall budget nor wait for it. While the overall budget is spent,
//! people at proven addresses keep pairing; only newcomers wait. A proven address is still held
//! to its own, its network's, its person's and its session's budgets, and proving one costs a
//! real pairing: a live request of a device the attacker controls, a fresh second factor, mail
//! to the tenant's admins and an audited ERP event.

use std::net::IpAddr;

use crate::config::PairingSettings;
use crate::ids::UserId;
use crate::meters::{Limit, Meters};
use crate::store::{StoreError, Tx, replay};

use super::PairingError;

/// The length of one budget window.
pub const WINDOW_MS: i64 = 10 * 60_000;
const PER_PERSON: i32 = 20;
const PER_SESSION: i32 = 20;
const PER_ADDRESS: i32 = 40;
/// How long an address that approved a pairing skips the overall budget.
const PROVEN_FOR_MS: i64 = 30 * 24 * 3_600_000;

/// Where a request comes from, as the budgets see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// One host: an IPv4 address, or an IPv6 /64 (a host picks any address in its /64, and
    /// privacy addresses change daily, so the /64 is what stays put).
    pub host: String,
    /// The network around it: an IPv4 /24, an IPv6 /48 (what a site, or a free tunnel broker,
    /// hands out: a smaller prefix would make one cheap allocation into many networks).
    pub network: String,
    /// Whether this is an IP address (rather than text standing for an unknown one).
    address: bool,
}

impl Origin {
    /// From the client address the HTTP layer determined (`None` when it has none). Text that is
    /// not an address stands for itself, as host and as network.
    pub fn of(address: Option<&str>) -> Self {
        let Some(text) = address.map(str::trim) else {
            return Self::unknown("-");
        };
        let Ok(ip) = text.parse::<IpAddr>() else {
            return Self::unknown(text);
        };
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Self {
                    host: v4.to_string(),
                    network: format!("{a}.{b}.{c}.0/24"),
                    address: true,
                }
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = |len: u32| {
                    let masked = bits & (u128::MAX << (128 - len));
                    format!("{}/{len}", std::net::Ipv6Addr::from(masked))
                };
                Self {
                    host: prefix(64),
                    network: prefix(48),
                    address: true,
                }
            }
        }
    }

    fn unknown(text: &str) -> Self {
        Self {
            host: text.to_owned(),
            network: text.to_owned(),
            address: false,
        }
    }
}

/// What counts an attempt: who, in which session, from where.
pub struct Attempt<'a> {
    pub user_id: UserId,
    pub session: &'a str,
    pub origin: &'a Origin,
}

/// The budgets that depend on the deployment (fleet size, customers' networks), and where
/// their refusals are counted.
#[derive(Clone)]
pub struct Budgets {
    per_network: i32,
    overall: i32,
    meters: Meters,
}

impl Budgets {
    pub fn from_settings(settings: &PairingSettings, meters: Meters) -> Self {
        let clamp = |n: std::num::NonZeroU32| i32::try_from(n.get()).unwrap_or(i32::MAX);
        Self {
            per_network: clamp(settings.code_attempts_per_network),
            overall: clamp(settings.code_attempts_overall),
            meters,
        }
    }

    /// Counts one attempt in each bucket, narrowest first; `Err(Throttled)` at the first bucket
    /// over its limit. Buckets after it are not counted, so an attempt refused for its person,
    /// session, address or network spends nothing of the wider budgets: one address can spend
    /// at most its own budget of its network's, and one network at most its own of the overall.
    pub fn count(
        &self,
        tx: &mut Tx<'_>,
        attempt: &Attempt<'_>,
        now: i64,
    ) -> Result<Result<(), PairingError>, StoreError> {
        let window = now - now.rem_euclid(WINDOW_MS);
        let throttled = |limit| {
            self.meters.throttled(limit);
            let wait = (window + WINDOW_MS - now + 999) / 1000;
            PairingError::Throttled {
                retry_after_secs: u64::try_from(wait).unwrap_or(60),
            }
        };
        let origin = attempt.origin;
        let buckets = [
            (
                format!("verify:user:{}", attempt.user_id),
                PER_PERSON,
                Limit::UserCodePerson,
            ),
            (
                format!("verify:session:{}", attempt.session),
                PER_SESSION,
                Limit::UserCodeSession,
            ),
            (
                format!("verify:ip:{}", origin.host),
                PER_ADDRESS,
                Limit::UserCodeAddress,
            ),
            (
                format!("verify:net:{}", origin.network),
                self.per_network,
                Limit::UserCodeNetwork,
            ),
        ];
        for (bucket, allowed, limit) in buckets {
            if replay::hit(tx, &bucket, window)? > allowed {
                return Ok(Err(throttled(limit)));
            }
        }
        if replay::marked(tx, &proven_bucket(origin), now)? {
            return Ok(Ok(()));
        }
        if replay::hit(tx, "verify:global", window)? > self.overall {
            return Ok(Err(throttled(Limit::UserCodeOverall)));
        }
        Ok(Ok(()))
    }
}

/// Remembers that a pairing was approved from `origin`: for the next 30 days its attempts skip
/// the overall budget (each further approval extends that). Only an IP address is proven: every
/// request without one shares one stand-in, which no single approval may vouch for.
pub fn prove(tx: &mut Tx<'_>, origin: &Origin, now: i64) -> Result<(), StoreError> {
    if !origin.address {
        return Ok(());
    }
    replay::mark_until(tx, &proven_bucket(origin), now + PROVEN_FOR_MS)
}

fn proven_bucket(origin: &Origin) -> String {
    format!("verify:proven:{}", origin.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_networks_by_address_family() {
        let v4 = Origin::of(Some("198.51.100.23"));
        assert_eq!(v4.host, "198.51.100.23");
        assert_eq!(v4.network, "198.51.100.0/24");
        let mapped = Origin::of(Some("::ffff:198.51.100.23"));
        assert_eq!(mapped, v4, "an IPv4-mapped address is the IPv4 address");
        let v6 = Origin::of(Some("2001:db8:aa:bb:1:2:3:4"));
        assert_eq!(v6.host, "2001:db8:aa:bb::/64");
        assert_eq!(v6.network, "2001:db8:aa::/48");
        assert_eq!(
            Origin::of(Some("2001:db8:aa:bb:ffff::9")).host,
            v6.host,
            "any address of one /64 is one host"
        );
        assert_eq!(Origin::of(None).host, "-");
        assert_eq!(Origin::of(Some("unix")).network, "unix");
    }
}
