//! Second factors: TOTP or a recovery code to finish signing in, the step-up check of
//! sensitive actions (here and, through [`SecondFactor`], in other modules' transactions), and
//! the current password before a change. Every answer is counted first in the account's
//! second-factor budget (see `throttle.rs`); the answer that spends it tells the owner by mail.

use serde_json::json;

use super::login::record_by_user;
use super::sessions::{Session, Stage};
use super::throttle::{OnPass, budget_spent};
use super::{AccountError, Accounts, Core, mails, totp};
use crate::events::{self, Action, Event, Subject};
use crate::store::users::{self, UserRecord};
use crate::store::{StoreError, Tx};

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

    /// Rotates `session` into a full one stepped up now: what a fresh second factor earns.
    /// `method` is the factor's `amr` value (`otp` for a code, `hwk` for a passkey).
    pub(super) fn stepped_up(
        &self,
        tx: &mut Tx<'_>,
        session: &Session,
        ip: Option<&str>,
        now: i64,
        method: &str,
    ) -> Result<String, AccountError> {
        let method = Some(method);
        self.rotate_session(tx, session, Stage::Full, Some(now), ip, now, method)
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
                    record_by_user(
                        tx,
                        now,
                        &user,
                        Action::UserRecoveryCodeUsed,
                        json!({ "left": left }),
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
                record_by_user(
                    tx,
                    now,
                    &user,
                    Action::UserSignedIn,
                    json!({ "ip": ip, "second_factor": via }),
                )?;
                // A fresh second factor counts as a step-up.
                Ok::<_, AccountError>(me.stepped_up(tx, &session, ip.as_deref(), now, "otp"))
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
        if !session.user.has_second_factor() {
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
                record_by_user(tx, now, &user, Action::UserSteppedUp, json!({ "ip": ip }))?;
                Ok::<_, AccountError>(me.stepped_up(tx, &session, ip.as_deref(), now, "otp"))
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
