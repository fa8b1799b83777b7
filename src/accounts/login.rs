//! Signing in: password (argon2id, a dummy check for unknown accounts), then TOTP or a recovery
//! code when enrolled; and the step-up check of sensitive actions.
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

use serde_json::json;

use super::sessions::{Session, Stage};
use super::{AccountError, Accounts, Core, mails, normalize_email, totp};
use crate::events::{self, Action, Event, Subject};
use crate::store::sessions as stored;
use crate::store::users::{self, UserRecord};
use crate::store::{StoreError, Tx};

/// Longest wait a run of failures can impose.
const MAX_WAIT_SECS: i64 = 15 * 60;

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in; the value is the session cookie.
    SignedIn(String),
    /// The account has TOTP: the value is a half-signed-in session cookie for the code page.
    SecondFactor(String),
}

/// A bucket of counted attempts, how many of them may fail before waits start, and what a
/// right answer does to it.
struct Limit {
    bucket: String,
    free: u32,
    on_pass: OnPass,
}

/// What a right answer does to a bucket.
#[derive(Clone, Copy)]
enum OnPass {
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
fn second_factor_bucket(user_id: i64) -> String {
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
fn budget_spent(counts: &[i32]) -> i32 {
    counts.last().copied().unwrap_or_default()
}

/// Which answer a second-factor attempt gave.
#[derive(Clone, Copy)]
enum Factor {
    SignInCode,
    StepUp,
    CurrentPassword,
}

impl Factor {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignInCode => "second_factor",
            Self::StepUp => "step_up",
            Self::CurrentPassword => "current_password",
        }
    }
}

impl Core {
    /// Per account and address (a right password starts it over when `account` says so), and
    /// per address.
    fn password_limits(&self, email: &str, ip: Option<&str>, account: OnPass) -> Vec<Limit> {
        let p = &self.settings.portal;
        vec![
            Limit {
                bucket: account_bucket(email, ip),
                free: p.login_free_failures,
                on_pass: account,
            },
            Limit {
                bucket: ip_bucket(ip),
                free: p.login_free_failures_per_ip,
                on_pass: OnPass::TakeBack,
            },
        ]
    }

    /// The password limits and then the account's budget (the order rows are locked in, the
    /// same everywhere).
    fn second_factor_limits(
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
    fn budget_limit(&self, user_id: i64) -> Limit {
        Limit {
            bucket: second_factor_bucket(user_id),
            free: self.settings.portal.second_factor_free_failures,
            on_pass: OnPass::StartOver,
        }
    }

    /// Counts this attempt in every bucket of `limits`, before it is checked. While any bucket
    /// still makes it wait, counts nothing and refuses; otherwise returns each bucket's count
    /// with this attempt.
    fn count_attempt(
        &self,
        tx: &mut Tx<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Result<Vec<i32>, AccountError>, StoreError> {
        let mut counted = Vec::with_capacity(limits.len());
        let mut wait = 0;
        for limit in limits {
            let before = stored::count_attempt(tx, &limit.bucket, now)?;
            wait = wait.max(wait_secs(before, limit.free, now));
            counted.push(before);
        }
        if wait > 0 {
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
    fn attempt_passed(&self, tx: &mut Tx<'_>, limits: &[Limit]) -> Result<(), StoreError> {
        for limit in limits {
            match limit.on_pass {
                OnPass::TakeBack => stored::uncount_attempt(tx, &limit.bucket, None)?,
                OnPass::StartOver => stored::clear_failures(tx, &limit.bucket)?,
            }
        }
        Ok(())
    }

    /// Takes back the attempt [`Accounts::check_current_password`] counted, inside the caller's
    /// transaction, once the password turned out right. A right password does not refill the
    /// account's budget: only its own attempt is taken back.
    pub(super) fn current_password_passed(
        &self,
        tx: &mut Tx<'_>,
        user_id: i64,
    ) -> Result<(), StoreError> {
        stored::uncount_attempt(tx, &self.budget_limit(user_id).bucket, None)
    }

    fn audit_failure(
        &self,
        tx: &mut Tx<'_>,
        user: Option<&UserRecord>,
        ip: Option<&str>,
        factor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // Never the typed address for unknown accounts: people type passwords into that field.
        let subject = user.map_or(Subject::UnknownAccount, |u| Subject::User(u.id));
        events::record(
            tx,
            now,
            Event::new(Action::UserSignInFailed, "anonymous", subject)
                .tenant(user.and_then(|u| u.tenant_id))
                .detail(json!({ "ip": ip, "factor": factor })),
        )?;
        Ok(())
    }

    /// A wrong second-factor answer (already counted). The one that spends the account's
    /// budget tells the owner by mail, once per run of failures.
    fn second_factor_failed(
        &self,
        tx: &mut Tx<'_>,
        user: &UserRecord,
        ip: Option<&str>,
        factor: Factor,
        spent: i32,
        now: i64,
    ) -> Result<(), StoreError> {
        self.audit_failure(tx, Some(user), ip, factor.as_str(), now)?;
        // With no free failures at all, the first one spends the budget.
        let free = self.settings.portal.second_factor_free_failures.max(1);
        if i64::from(spent) != i64::from(free) {
            return Ok(());
        }
        events::record(
            tx,
            now,
            Event::new(
                Action::UserSecondFactorThrottled,
                "anonymous",
                Subject::User(user.id),
            )
            .tenant(user.tenant_id)
            .detail(json!({ "ip": ip, "failures": spent })),
        )?;
        let body = crate::mail::render(&mails::SecondFactorBudgetSpent {
            name: &user.name,
            failures: spent,
            address: ip.unwrap_or("an unknown address"),
        })?;
        crate::mail::queue(
            tx,
            &user.email,
            "Wrong codes were entered for your pairgate account",
            &body,
            now,
        )?;
        Ok(())
    }

    /// Whether `code` is the user's current TOTP code and not used before; records its step.
    pub(super) fn check_totp(
        &self,
        tx: &mut Tx<'_>,
        user: &UserRecord,
        code: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(secret) = user.totp_secret.as_deref().and_then(|sealed| {
            self.totp_box
                .open(format!("user:{}", user.id).as_bytes(), sealed)
        }) else {
            return Ok(false);
        };
        match totp::matching_step(&secret, code, now.div_euclid(1000)) {
            Some(step) => users::use_totp_step(tx, user.id, step),
            None => Ok(false),
        }
    }

    /// A step-up code for `session`'s user, counted and checked inside the caller's
    /// transaction. `Ok(Err(_))` is a refusal whose bookkeeping should still commit.
    fn check_step_up(
        &self,
        tx: &mut Tx<'_>,
        session: &Session,
        code: &str,
        ip: Option<&str>,
        now: i64,
    ) -> Result<Result<UserRecord, AccountError>, StoreError> {
        let Some(user) = users::find(tx, session.user.id)? else {
            return Ok(Err(AccountError::SessionEnded));
        };
        let limits = self.second_factor_limits(&user, ip, OnPass::TakeBack);
        let spent = match self.count_attempt(tx, &limits, now)? {
            Ok(counts) => budget_spent(&counts),
            Err(e) => return Ok(Err(e)),
        };
        if !self.check_totp(tx, &user, code.trim(), now)? {
            self.second_factor_failed(tx, &user, ip, Factor::StepUp, spent, now)?;
            return Ok(Err(AccountError::InvalidCode));
        }
        self.attempt_passed(tx, &limits)?;
        Ok(Ok(user))
    }
}

/// What a sensitive action gets from [`Accounts::second_factor`]: a way to check a fresh TOTP
/// code inside the action's own transaction.
pub struct SecondFactor(std::sync::Arc<Core>);

impl SecondFactor {
    /// Checks `code` for the session's user as a step-up, inside the caller's transaction:
    /// throttled like sign-in and by the account's budget, a wrong code counted and audited, a
    /// right one usable once. `Ok(Err(_))` is a refusal the transaction should still commit
    /// (the failure is recorded).
    pub fn check(
        &self,
        tx: &mut Tx<'_>,
        session: &Session,
        code: &str,
        ip: Option<&str>,
        now: i64,
    ) -> Result<Result<(), AccountError>, StoreError> {
        if !session.user.totp_enabled {
            return Ok(Err(AccountError::TotpRequired));
        }
        Ok(self.0.check_step_up(tx, session, code, ip, now)?.map(drop))
    }
}

impl Accounts {
    /// The step-up check for actions of other modules (device approval).
    pub fn second_factor(&self) -> SecondFactor {
        SecondFactor(std::sync::Arc::clone(&self.core))
    }

    /// Checks email and password. Every failure looks the same from outside.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<LoginOutcome, AccountError> {
        let email = normalize_email(email).unwrap_or_else(|| email.trim().to_lowercase());
        let now = self.now_ms();
        let (ip, ua) = (ip.map(str::to_owned), user_agent.map(str::to_owned));
        let hashing = self.admit()?;
        let limits = std::sync::Arc::new(self.core.password_limits(
            &email,
            ip.as_deref(),
            OnPass::StartOver,
        ));
        // Counted (and committed) before the password is checked.
        let user = {
            let (email, limits) = (email.clone(), std::sync::Arc::clone(&limits));
            let core = std::sync::Arc::clone(&self.core);
            self.store
                .write(move |tx| {
                    if let Err(e) = core.count_attempt(tx, &limits, now)? {
                        return Ok(Err(e));
                    }
                    Ok::<_, StoreError>(Ok(users::find_by_email(tx, &email)?))
                })
                .await??
        };
        let ok = hashing
            .verify(
                password.to_owned(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await
            && user
                .as_ref()
                .is_some_and(|u| u.status == users::ActiveStatus::Active);
        drop(hashing);
        let me = std::sync::Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                let user = match (ok, user) {
                    (true, Some(user)) => user,
                    (_, user) => {
                        me.audit_failure(tx, user.as_ref(), ip.as_deref(), "password", now)?;
                        return Ok(Err(AccountError::InvalidCredentials));
                    }
                };
                me.attempt_passed(tx, &limits)?;
                let outcome = if user.totp_enabled {
                    LoginOutcome::SecondFactor(me.open_session(
                        tx,
                        user.id,
                        Stage::SecondFactor,
                        None,
                        (ip.as_deref(), ua.as_deref()),
                        now,
                    )?)
                } else {
                    events::record(
                        tx,
                        now,
                        Event::new(
                            Action::UserSignedIn,
                            format!("user:{}", user.id),
                            Subject::User(user.id),
                        )
                        .tenant(user.tenant_id)
                        .detail(json!({ "ip": ip, "second_factor": false })),
                    )?;
                    LoginOutcome::SignedIn(me.open_session(
                        tx,
                        user.id,
                        Stage::Full,
                        None,
                        (ip.as_deref(), ua.as_deref()),
                        now,
                    )?)
                };
                Ok::<_, StoreError>(Ok(outcome))
            })
            .await?
    }

    /// Completes sign-in with a TOTP code or a recovery code; returns the new session cookie.
    pub async fn sign_in_second_factor(
        &self,
        session: &Session,
        code: &str,
        ip: Option<&str>,
    ) -> Result<String, AccountError> {
        if session.stage != Stage::SecondFactor {
            return Err(AccountError::SessionEnded);
        }
        let now = self.now_ms();
        let me = std::sync::Arc::clone(&self.core);
        let (session, code, ip) = (
            session.clone(),
            code.trim().to_owned(),
            ip.map(str::to_owned),
        );
        self.store
            .write(move |tx| {
                let Some(user) = users::find(tx, session.user.id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                let limits = me.second_factor_limits(&user, ip.as_deref(), OnPass::StartOver);
                let spent = match me.count_attempt(tx, &limits, now)? {
                    Ok(counts) => budget_spent(&counts),
                    Err(e) => return Ok(Err(e)),
                };
                let via = if me.check_totp(tx, &user, &code, now)? {
                    "totp"
                } else if let Some(hash) = totp::hash_recovery_code(&code)
                    && users::use_recovery_code(tx, user.id, &hash, now)?
                {
                    let left = users::unused_recovery_codes(tx, user.id)?;
                    events::record(
                        tx,
                        now,
                        Event::new(
                            Action::UserRecoveryCodeUsed,
                            format!("user:{}", user.id),
                            Subject::User(user.id),
                        )
                        .tenant(user.tenant_id)
                        .detail(json!({ "left": left })),
                    )?;
                    "recovery_code"
                } else {
                    me.second_factor_failed(
                        tx,
                        &user,
                        ip.as_deref(),
                        Factor::SignInCode,
                        spent,
                        now,
                    )?;
                    return Ok(Err(AccountError::InvalidCode));
                };
                me.attempt_passed(tx, &limits)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::UserSignedIn,
                        format!("user:{}", user.id),
                        Subject::User(user.id),
                    )
                    .tenant(user.tenant_id)
                    .detail(json!({ "ip": ip, "second_factor": via })),
                )?;
                // A fresh second factor counts as a step-up.
                Ok::<_, AccountError>(me.rotate_session(
                    tx,
                    &session,
                    Stage::Full,
                    Some(now),
                    ip.as_deref(),
                    now,
                ))
            })
            .await?
    }

    /// Re-checks the second factor for a sensitive action; returns the rotated session cookie.
    pub async fn step_up(
        &self,
        session: &Session,
        code: &str,
        ip: Option<&str>,
    ) -> Result<String, AccountError> {
        if session.stage != Stage::Full {
            return Err(AccountError::SessionEnded);
        }
        if !session.user.totp_enabled {
            return Err(AccountError::TotpRequired);
        }
        let now = self.now_ms();
        let me = std::sync::Arc::clone(&self.core);
        let (session, code, ip) = (session.clone(), code.to_owned(), ip.map(str::to_owned));
        self.store
            .write(move |tx| {
                let user = match me.check_step_up(tx, &session, &code, ip.as_deref(), now)? {
                    Ok(user) => user,
                    Err(e) => return Ok(Err(e)),
                };
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::UserSteppedUp,
                        format!("user:{}", user.id),
                        Subject::User(user.id),
                    )
                    .tenant(user.tenant_id)
                    .detail(json!({ "ip": ip })),
                )?;
                Ok::<_, AccountError>(me.rotate_session(
                    tx,
                    &session,
                    Stage::Full,
                    Some(now),
                    ip.as_deref(),
                    now,
                ))
            })
            .await?
    }

    /// Checks the session user's current password before a change, counted in the account's
    /// second-factor budget (a stolen session must not become a way to guess the password).
    /// Returns the user's record when the password is right.
    pub(super) async fn check_current_password(
        &self,
        session: &Session,
        current: &str,
        ip: Option<&str>,
        hashing: &super::Admission,
    ) -> Result<UserRecord, AccountError> {
        let now = self.now_ms();
        let (id, ip) = (session.user.id, ip.map(str::to_owned));
        let me = std::sync::Arc::clone(&self.core);
        let limit = [self.core.budget_limit(id)];
        let (user, spent) = self
            .store
            .write(move |tx| {
                let Some(user) = users::find(tx, id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                match me.count_attempt(tx, &limit, now)? {
                    Ok(counts) => Ok::<_, StoreError>(Ok((user, budget_spent(&counts)))),
                    Err(e) => Ok(Err(e)),
                }
            })
            .await??;
        if hashing
            .verify(current.to_owned(), Some(user.password_hash.clone()))
            .await
        {
            return Ok(user);
        }
        let me = std::sync::Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                me.second_factor_failed(
                    tx,
                    &user,
                    ip.as_deref(),
                    Factor::CurrentPassword,
                    spent,
                    now,
                )
            })
            .await?;
        Err(AccountError::InvalidCredentials)
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
