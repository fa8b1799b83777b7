//! Signing in with a password (argon2id, a dummy check for unknown accounts), counted before it
//! is checked (see `throttle.rs`); an account with TOTP goes on to `second_factor.rs`.

use std::sync::Arc;

use serde_json::json;

use super::sessions::Stage;
use super::throttle::{Limit, OnPass};
use super::{AccountError, Accounts, Core, normalize_email};
use crate::events::{self, Action, Event, Subject};
use crate::store::passkeys;
use crate::store::users::{self, UserRecord};
use crate::store::{StoreError, Tx};

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in; the value is the session cookie.
    SignedIn(String),
    /// The account has a second factor (TOTP or a passkey): the value is a half-signed-in
    /// session cookie for the code page.
    SecondFactor(String),
}

impl Core {
    pub(super) fn audit_failure(
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
}

/// Records `action` by `user` on their own account.
pub(super) fn record_by_user(
    tx: &mut Tx<'_>,
    now: i64,
    user: &UserRecord,
    action: Action,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    events::record(
        tx,
        now,
        Event::new(action, format!("user:{}", user.id), Subject::User(user.id))
            .tenant(user.tenant_id)
            .detail(detail),
    )
}

/// One sign-in attempt, owned for its two write transactions.
struct Attempt {
    email: String,
    ip: Option<String>,
    user_agent: Option<String>,
    now: i64,
    /// Per account and address, and per address; a right password starts the first over.
    limits: Vec<Limit>,
}

impl Core {
    /// After the password check: audits a failure, or takes the attempt back and opens a
    /// session, half signed in when the account has TOTP.
    fn finish_sign_in(
        &self,
        tx: &mut Tx<'_>,
        attempt: &Attempt,
        ok: bool,
        user: Option<UserRecord>,
    ) -> Result<Result<LoginOutcome, AccountError>, StoreError> {
        let (ip, ua, now) = (&attempt.ip, &attempt.user_agent, attempt.now);
        let user = match (ok, user) {
            (true, Some(user)) => user,
            (_, user) => {
                self.audit_failure(tx, user.as_ref(), ip.as_deref(), "password", now)?;
                return Ok(Err(AccountError::InvalidCredentials));
            }
        };
        self.attempt_passed(tx, &attempt.limits)?;
        let stage = if user.totp_enabled || passkeys::count_for_user(tx, user.id)? > 0 {
            Stage::SecondFactor
        } else {
            record_by_user(
                tx,
                now,
                &user,
                Action::UserSignedIn,
                json!({ "ip": ip, "second_factor": false }),
            )?;
            Stage::Full
        };
        let cookie = self.open_session(
            tx,
            user.id,
            stage,
            None,
            (ip.as_deref(), ua.as_deref()),
            now,
            "pwd",
        )?;
        Ok(Ok(match stage {
            Stage::SecondFactor => LoginOutcome::SecondFactor(cookie),
            Stage::Full => LoginOutcome::SignedIn(cookie),
        }))
    }
}

impl Accounts {
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
        let limits = self
            .core
            .password_limits(&email, ip.as_deref(), OnPass::StartOver);
        let attempt = Arc::new(Attempt {
            email,
            ip,
            user_agent: ua,
            now,
            limits,
        });
        // Counted (and committed) before the password is checked.
        let user = self.count_sign_in(Arc::clone(&attempt)).await?;
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
        let me = Arc::clone(&self.core);
        self.store
            .write(move |tx| me.finish_sign_in(tx, &attempt, ok, user))
            .await?
    }

    /// Counts `attempt` in its limits and reads its account (`None` if there is none).
    async fn count_sign_in(
        &self,
        attempt: Arc<Attempt>,
    ) -> Result<Option<UserRecord>, AccountError> {
        let core = Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                if let Err(e) = core.count_attempt(tx, &attempt.limits, attempt.now)? {
                    return Ok(Err(e));
                }
                Ok::<_, StoreError>(Ok(users::find_by_email(tx, &attempt.email)?))
            })
            .await?
    }
}
