//! Counting sign-in and second-factor attempts before they are checked.
//!
//! Every attempt is counted before it is checked, in one or more buckets, each with a free
//! allowance past which waits double (1 s, 2 s, 4 s …) up to a cap. Counting first means that
//! concurrent attempts see each other: however many arrive at once, no more than the allowance
//! are checked. An attempt that turns out right is taken back again.
//!
//! - Passwords: per account and address, and per address.
//! - Second-factor answers (TOTP and recovery codes at sign-in, step-up codes, the current
//!   password of a password change) also count per account, from every address together. Only
//!   someone past the password or signed in can spend that budget, a correct password does not
//!   refill it (a correct second factor does), and when it runs out the account's owner is told
//!   by mail.
//!
//! Waits are capped and a refused attempt is not counted, so an attacker can slow a real user
//! down but never lock them out for good.

use super::{AccountError, Core};
use crate::ids::UserId;
use crate::meters;
use crate::store::sessions as stored;
use crate::store::users::UserRecord;
use crate::store::{StoreError, Tx};

/// Longest wait a run of failures can impose.
const MAX_WAIT_SECS: i64 = 15 * 60;

/// A bucket of counted attempts, how many of them may fail before waits start, and what a
/// right answer does to it.
pub(super) struct Limit {
    bucket: String,
    free: u32,
    on_pass: OnPass,
    meter: meters::Limit,
}

/// What a right answer does to a bucket.
#[derive(Clone, Copy)]
pub(super) enum OnPass {
    /// Only its own attempt is taken back (the failures before it stay).
    TakeBack,
    /// The bucket starts over.
    StartOver,
}

fn account_bucket(email: &str, ip: Option<&str>) -> String {
    format!("acct:{email}|{}", ip.unwrap_or("-"))
}

fn ip_bucket(ip: Option<&str>) -> String {
    format!("ip:{}", ip.unwrap_or("-"))
}

/// The account's second-factor budget, shared by every address.
fn second_factor_bucket(user_id: UserId) -> String {
    format!("2fa:user:{user_id}")
}

/// Seconds still to wait in a bucket, given its failures and the free allowance.
fn wait_secs(failures: Option<(i32, i64)>, free: u32, now_ms: i64) -> i64 {
    let Some((count, last)) = failures else {
        return 0;
    };
    let over = i64::from(count) - i64::from(free);
    if over < 0 {
        return 0;
    }
    let delay = 1i64
        .checked_shl(u32::try_from(over).unwrap_or(31).min(30))
        .unwrap_or(MAX_WAIT_SECS)
        .min(MAX_WAIT_SECS);
    ((last + delay * 1000 - now_ms) + 999)
        .div_euclid(1000)
        .max(0)
}

/// The account's budget is the last of the limits counted: the failures in it so far.
pub(super) fn budget_spent(counts: &[i32]) -> i32 {
    counts.last().copied().unwrap_or_default()
}

impl Core {
    /// Per account and address (a right password starts it over when `account` says so), and
    /// per address.
    pub(super) fn password_limits(
        &self,
        email: &str,
        ip: Option<&str>,
        account: OnPass,
    ) -> Vec<Limit> {
        let p = &self.settings.portal;
        vec![
            Limit {
                bucket: account_bucket(email, ip),
                free: p.login_free_failures,
                on_pass: account,
                meter: meters::Limit::SignInAccount,
            },
            self.address_limit(ip),
        ]
    }

    /// The sign-in limit of one address, whatever the account: a passkey sign-in (which names
    /// no account until it is answered) counts here too.
    pub(super) fn address_limit(&self, ip: Option<&str>) -> Limit {
        Limit {
            bucket: ip_bucket(ip),
            free: self.settings.portal.login_free_failures_per_ip,
            on_pass: OnPass::TakeBack,
            meter: meters::Limit::SignInAddress,
        }
    }

    /// The password limits and then the account's budget (the order rows are locked in, the
    /// same everywhere).
    pub(super) fn second_factor_limits(
        &self,
        user: &UserRecord,
        ip: Option<&str>,
        account: OnPass,
    ) -> Vec<Limit> {
        let mut limits = self.password_limits(&user.email, ip, account);
        limits.push(self.budget_limit(user.id));
        limits
    }

    /// The account's second-factor budget: a right second factor refills it.
    pub(super) fn budget_limit(&self, user_id: UserId) -> Limit {
        Limit {
            bucket: second_factor_bucket(user_id),
            free: self.settings.portal.second_factor_free_failures,
            on_pass: OnPass::StartOver,
            meter: meters::Limit::SecondFactorBudget,
        }
    }

    /// Counts this attempt in every bucket of `limits`, before it is checked. While any bucket
    /// still makes it wait, counts nothing and refuses (recorded under the limit with the longest
    /// wait, the one the answer names); otherwise returns each bucket's count with this attempt.
    pub(super) fn count_attempt(
        &self,
        tx: &mut Tx<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Result<Vec<i32>, AccountError>, StoreError> {
        let mut counted = Vec::with_capacity(limits.len());
        let (mut wait, mut longest) = (0, None);
        for limit in limits {
            let before = stored::count_attempt(tx, &limit.bucket, now)?;
            let bucket_wait = wait_secs(before, limit.free, now);
            if bucket_wait > wait {
                (wait, longest) = (bucket_wait, Some(limit));
            }
            counted.push(before);
        }
        if let Some(longest) = longest {
            self.meters.throttled(longest.meter);
            for (limit, before) in limits.iter().zip(&counted) {
                let last = before.map_or(now, |(_, last)| last);
                stored::uncount_attempt(tx, &limit.bucket, Some(last))?;
            }
            return Ok(Err(AccountError::Throttled {
                retry_after_secs: u64::try_from(wait).unwrap_or(1),
            }));
        }
        Ok(Ok(counted
            .into_iter()
            .map(|before| before.map_or(1, |(n, _)| n + 1))
            .collect()))
    }

    /// A right answer: each bucket takes its attempt back or starts over.
    pub(super) fn attempt_passed(
        &self,
        tx: &mut Tx<'_>,
        limits: &[Limit],
    ) -> Result<(), StoreError> {
        for limit in limits {
            match limit.on_pass {
                OnPass::TakeBack => stored::uncount_attempt(tx, &limit.bucket, None)?,
                OnPass::StartOver => stored::clear_failures(tx, &limit.bucket)?,
            }
        }
        Ok(())
    }

    /// Takes back the attempt [`super::Accounts::check_current_password`] counted, inside the
    /// caller's transaction, once the password turned out right. A right password does not
    /// refill the account's budget: only its own attempt is taken back.
    pub(super) fn current_password_passed(
        &self,
        tx: &mut Tx<'_>,
        user_id: UserId,
    ) -> Result<(), StoreError> {
        stored::uncount_attempt(tx, &self.budget_limit(user_id).bucket, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_allowance_double_and_stop_at_the_cap() {
        let now = 1_000_000;
        assert_eq!(wait_secs(None, 5, now), 0);
        assert_eq!(wait_secs(Some((4, now)), 5, now), 0);
        assert_eq!(wait_secs(Some((5, now)), 5, now), 1);
        assert_eq!(wait_secs(Some((7, now)), 5, now), 4);
        assert_eq!(wait_secs(Some((7, now - 4000)), 5, now), 0);
        assert_eq!(wait_secs(Some((500, now)), 5, now), MAX_WAIT_SECS);
    }
}
