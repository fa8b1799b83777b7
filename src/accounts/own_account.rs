//! What a signed-in person manages of their own account: their name, their sessions (listed,
//! the others signed out), their second factor's state and new recovery codes.

use serde_json::json;

use super::members::person_name;
use super::sessions::Session;
use super::{AccountError, Accounts, totp};
use crate::events::{self, Action, Event, Subject};
use crate::store::StoreError;
use crate::store::sessions as stored_sessions;
use crate::store::users;

/// One of a person's live sessions, as the account page lists it.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The browser's `User-Agent` when it signed in, if it sent one.
    pub user_agent: Option<String>,
    /// The address it signed in from (or last confirmed it was them from).
    pub ip: Option<String>,
    /// When it signed in (Unix ms).
    pub started_at: i64,
    /// When it was last used (Unix ms, to the minute).
    pub last_seen_at: i64,
    /// The session asking.
    pub current: bool,
}

/// The state of a person's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactorState {
    pub enrolled: bool,
    /// Recovery codes not used yet.
    pub codes_left: i64,
    /// Recovery codes given at enrolment or at the last regeneration.
    pub codes_given: i64,
}

impl SecondFactorState {
    /// Few enough codes left to warn about (three or fewer, or none).
    pub fn few_codes_left(&self) -> bool {
        self.enrolled && self.codes_left <= 3
    }
}

impl Accounts {
    /// The session user's live sessions, this one marked.
    pub async fn own_sessions(&self, session: &Session) -> Result<Vec<SessionView>, AccountError> {
        let (user, me) = (session.user.id, session.id_hash.clone());
        let now = self.now_ms();
        let idle = i64::from(self.settings.portal.session_idle_secs.get()) * 1000;
        let records = self
            .store
            .read(move |tx| stored_sessions::list_for_user(tx, user, now, idle))
            .await?;
        let mut views: Vec<SessionView> = records
            .into_iter()
            .map(|r| SessionView {
                current: r.id_hash == me,
                user_agent: r.user_agent,
                ip: r.ip,
                started_at: r.created_at,
                last_seen_at: r.last_seen_at,
            })
            .collect();
        // This session first: it is the one the person knows.
        views.sort_by_key(|v| !v.current);
        Ok(views)
    }

    /// Ends every session of the session user but this one; returns how many ended.
    pub async fn sign_out_others(&self, session: &Session) -> Result<usize, AccountError> {
        let (user, keep) = (session.user.id, session.id_hash.clone());
        let (actor, tenant) = (session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        Ok(self
            .store
            .write(move |tx| {
                let n = stored_sessions::delete_others_of_user(tx, user, &keep)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserSignedOut, actor, Subject::User(user))
                        .tenant(tenant)
                        .detail(json!({ "others": true, "sessions": n })),
                )?;
                Ok::<_, StoreError>(n)
            })
            .await?)
    }

    /// Renames the session user; returns the name as saved (trimmed).
    pub async fn rename(&self, session: &Session, name: &str) -> Result<String, AccountError> {
        let name = person_name(name)?;
        let (user, from) = (session.user.id, session.user.name.clone());
        let (actor, tenant) = (session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        let saved = name.clone();
        self.store
            .write(move |tx| {
                users::set_name(tx, user, &name)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserRenamed, actor, Subject::User(user))
                        .tenant(tenant)
                        .detail(json!({ "from": from, "to": name })),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(saved)
    }

    /// Whether the session user has a second factor, and how many recovery codes are left.
    pub async fn second_factor_state(
        &self,
        session: &Session,
    ) -> Result<SecondFactorState, AccountError> {
        let user = session.user.id;
        let enrolled = session.user.totp_enabled;
        Ok(self
            .store
            .read(move |tx| {
                Ok::<_, StoreError>(SecondFactorState {
                    enrolled,
                    codes_left: users::unused_recovery_codes(tx, user)?,
                    codes_given: users::recovery_codes_given(tx, user)?,
                })
            })
            .await?)
    }

    /// Replaces the session user's recovery codes with new ones, returned to be shown once; the
    /// old ones stop working. Sensitive: needs a fresh step-up.
    pub async fn regenerate_recovery_codes(
        &self,
        session: &Session,
    ) -> Result<Vec<String>, AccountError> {
        if !session.user.totp_enabled {
            return Err(AccountError::TotpRequired);
        }
        self.require_step_up(session)?;
        let codes = totp::recovery_codes();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| totp::hash_recovery_code(c))
            .collect();
        let (user, actor, tenant) = (session.user.id, session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                users::replace_recovery_codes(tx, user, &hashes)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::UserRecoveryCodesRegenerated,
                        actor,
                        Subject::User(user),
                    )
                    .tenant(tenant)
                    .detail(json!({ "codes": hashes.len() })),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(codes)
    }
}

impl Accounts {
    /// Forgets the session user's own second factor so that they set it up again, on a new
    /// phone: the key and the recovery codes go, and enrolment starts afresh. Sensitive: needs
    /// a fresh step-up (a code from the old phone, or a sign-in with a recovery code).
    pub async fn restart_own_totp(&self, session: &Session) -> Result<(), AccountError> {
        if !session.user.totp_enabled {
            return Ok(());
        }
        self.require_step_up(session)?;
        let (user, actor, tenant) = (session.user.id, session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                users::reset_totp(tx, user)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserTotpReset, actor, Subject::User(user))
                        .tenant(tenant)
                        .detail(json!({ "own": true })),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }
}
