//! Signing in: password (argon2id, a dummy check for unknown accounts), then TOTP or a recovery
//! code when enrolled; throttled per account-and-address and per address with exponential waits
//! that are capped, so an attacker can slow a real user down but never lock them out for good.

use serde_json::json;

use super::sessions::{Session, Stage};
use super::{AccountError, Accounts, Core, normalize_email, totp};
use crate::audit::{self, Action};
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

fn account_bucket(email: &str, ip: Option<&str>) -> String {
    format!("acct:{email}|{}", ip.unwrap_or("-"))
}

fn ip_bucket(ip: Option<&str>) -> String {
    format!("ip:{}", ip.unwrap_or("-"))
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

impl Core {
    fn throttle(
        &self,
        tx: &mut Tx<'_>,
        email: &str,
        ip: Option<&str>,
        now: i64,
    ) -> Result<(), AccountError> {
        let p = &self.settings.portal;
        let wait = wait_secs(
            stored::failures(tx, &account_bucket(email, ip))?,
            p.login_free_failures,
            now,
        )
        .max(wait_secs(
            stored::failures(tx, &ip_bucket(ip))?,
            p.login_free_failures_per_ip,
            now,
        ));
        if wait > 0 {
            return Err(AccountError::Throttled {
                retry_after_secs: u64::try_from(wait).unwrap_or(1),
            });
        }
        Ok(())
    }

    fn record_failure(
        &self,
        tx: &mut Tx<'_>,
        email: &str,
        user: Option<&UserRecord>,
        ip: Option<&str>,
        factor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        stored::record_failure(tx, &account_bucket(email, ip), now)?;
        stored::record_failure(tx, &ip_bucket(ip), now)?;
        // Never the typed address for unknown accounts: people type passwords into that field.
        let subject = user.map_or_else(
            || "account:unknown".to_owned(),
            |u| format!("user:{}", u.id),
        );
        crate::store::audit::append(
            tx,
            &audit::event(
                now,
                Action::UserSignInFailed,
                "anonymous",
                subject,
                user.and_then(|u| u.tenant_id),
                json!({ "ip": ip, "factor": factor }),
            ),
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
}

/// What a sensitive action gets from [`Accounts::second_factor`]: a way to check a fresh TOTP
/// code inside the action's own transaction.
pub struct SecondFactor(std::sync::Arc<Core>);

impl SecondFactor {
    /// Checks `code` for the session's user as a step-up, inside the caller's transaction:
    /// throttled like sign-in, a wrong code counted and audited, a right one usable once.
    /// `Ok(Err(_))` is a refusal the transaction should still commit (the failure is recorded).
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
        let email = &session.user.email;
        if let Err(e) = self.0.throttle(tx, email, ip, now) {
            return Ok(Err(e));
        }
        let Some(user) = users::find(tx, session.user.id)? else {
            return Ok(Err(AccountError::SessionEnded));
        };
        if !self.0.check_totp(tx, &user, code.trim(), now)? {
            self.0
                .record_failure(tx, email, Some(&user), ip, "step_up", now)?;
            return Ok(Err(AccountError::InvalidCode));
        }
        Ok(Ok(()))
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
        let user = {
            let (email, ip) = (email.clone(), ip.clone());
            let core = std::sync::Arc::clone(&self.core);
            self.store
                .read(move |tx| {
                    core.throttle(tx, &email, ip.as_deref(), now)?;
                    Ok::<_, AccountError>(users::find_by_email(tx, &email)?)
                })
                .await?
        };
        let ok = self
            .verify_password(
                password.to_owned(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await
            && user.as_ref().is_some_and(|u| u.status == "active");
        let me = std::sync::Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                let user = match (ok, user) {
                    (true, Some(user)) => user,
                    (_, user) => {
                        me.record_failure(
                            tx,
                            &email,
                            user.as_ref(),
                            ip.as_deref(),
                            "password",
                            now,
                        )?;
                        return Ok(Err(AccountError::InvalidCredentials));
                    }
                };
                stored::clear_failures(tx, &account_bucket(&email, ip.as_deref()))?;
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
                    crate::store::audit::append(
                        tx,
                        &audit::event(
                            now,
                            Action::UserSignedIn,
                            format!("user:{}", user.id),
                            format!("user:{}", user.id),
                            user.tenant_id,
                            json!({ "ip": ip, "second_factor": false }),
                        ),
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
                let email = session.user.email.clone();
                if let Err(e) = me.throttle(tx, &email, ip.as_deref(), now) {
                    return Ok(Err(e));
                }
                let Some(user) = users::find(tx, session.user.id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                let via = if me.check_totp(tx, &user, &code, now)? {
                    "totp"
                } else if let Some(hash) = totp::hash_recovery_code(&code)
                    && users::use_recovery_code(tx, user.id, &hash, now)?
                {
                    let left = users::unused_recovery_codes(tx, user.id)?;
                    crate::store::audit::append(
                        tx,
                        &audit::event(
                            now,
                            Action::UserRecoveryCodeUsed,
                            format!("user:{}", user.id),
                            format!("user:{}", user.id),
                            user.tenant_id,
                            json!({ "left": left }),
                        ),
                    )?;
                    "recovery_code"
                } else {
                    me.record_failure(
                        tx,
                        &email,
                        Some(&user),
                        ip.as_deref(),
                        "second_factor",
                        now,
                    )?;
                    return Ok(Err(AccountError::InvalidCode));
                };
                stored::clear_failures(tx, &account_bucket(&email, ip.as_deref()))?;
                crate::store::audit::append(
                    tx,
                    &audit::event(
                        now,
                        Action::UserSignedIn,
                        format!("user:{}", user.id),
                        format!("user:{}", user.id),
                        user.tenant_id,
                        json!({ "ip": ip, "second_factor": via }),
                    ),
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
        let (session, code, ip) = (
            session.clone(),
            code.trim().to_owned(),
            ip.map(str::to_owned),
        );
        self.store
            .write(move |tx| {
                let email = session.user.email.clone();
                if let Err(e) = me.throttle(tx, &email, ip.as_deref(), now) {
                    return Ok(Err(e));
                }
                let Some(user) = users::find(tx, session.user.id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                if !me.check_totp(tx, &user, &code, now)? {
                    me.record_failure(tx, &email, Some(&user), ip.as_deref(), "step_up", now)?;
                    return Ok(Err(AccountError::InvalidCode));
                }
                crate::store::audit::append(
                    tx,
                    &audit::event(
                        now,
                        Action::UserSteppedUp,
                        format!("user:{}", user.id),
                        format!("user:{}", user.id),
                        user.tenant_id,
                        json!({ "ip": ip }),
                    ),
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
}
