//! Passkeys turned into sessions: the second step of a password sign-in, a step-up, and a
//! sign-in with a passkey alone. The passkey is checked by `passkey_use.rs`; here a verified use
//! becomes a session rotated to full and stepped up now (webauthn-rs's passkeys always ask the
//! authenticator to verify its user, so a passkey is itself a fresh second factor).

use serde_json::json;

use super::login::record_by_user;
use super::passkeys::{Ceremony, PasskeyError, PublicKeyCredential, RequestChallengeResponse};
use super::sessions::{Session, Stage};
use super::{AccountError, Accounts};
use crate::events::{self, Action, Event, Subject};
use crate::store::users;

impl Accounts {
    /// Completes a password sign-in with a passkey (a ceremony begun for this session's user);
    /// returns the new session cookie.
    pub async fn sign_in_second_factor_passkey(
        &self,
        session: &Session,
        handle: &str,
        answer: &PublicKeyCredential,
        ip: Option<&str>,
    ) -> Result<String, PasskeyError> {
        if session.stage != Stage::SecondFactor {
            return Err(AccountError::SessionEnded.into());
        }
        let used = self
            .finish_passkey_authentication(session, handle, answer)
            .await?;
        self.stepped_up_by_passkey(session, used.passkey, ip, Action::UserSignedIn)
            .await
    }

    /// A step-up with a passkey (a ceremony begun for this session's user); returns the rotated
    /// session cookie.
    pub async fn step_up_passkey(
        &self,
        session: &Session,
        handle: &str,
        answer: &PublicKeyCredential,
        ip: Option<&str>,
    ) -> Result<String, PasskeyError> {
        if session.stage != Stage::Full {
            return Err(AccountError::SessionEnded.into());
        }
        let used = self
            .finish_passkey_authentication(session, handle, answer)
            .await?;
        self.stepped_up_by_passkey(session, used.passkey, ip, Action::UserSteppedUp)
            .await
    }

    /// Begins a sign-in with a passkey alone from `ip`: counted in the address's sign-in limit
    /// (it writes a ceremony before anyone is known), and taken back when it succeeds.
    pub async fn begin_passkey_sign_in_from(
        &self,
        ip: Option<&str>,
    ) -> Result<Ceremony<RequestChallengeResponse>, PasskeyError> {
        self.webauthn()?;
        let limit = [self.core.address_limit(ip)];
        let (me, now) = (std::sync::Arc::clone(&self.core), self.now_ms());
        self.store
            .write(move |tx| me.count_attempt(tx, &limit, now))
            .await??;
        self.begin_passkey_sign_in().await
    }

    /// Signs in with a passkey alone (a discoverable credential names its account, whose owner
    /// allowed it); returns the cookie of a full session, stepped up now.
    pub async fn sign_in_passkey(
        &self,
        handle: &str,
        answer: &PublicKeyCredential,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<String, PasskeyError> {
        let used = self.finish_passkey_sign_in(handle, answer).await?;
        let now = self.now_ms();
        let me = std::sync::Arc::clone(&self.core);
        let limit = [self.core.address_limit(ip)];
        let (ip, ua) = (ip.map(str::to_owned), user_agent.map(str::to_owned));
        self.store
            .write(move |tx| {
                me.attempt_passed(tx, &limit)?;
                let Some(user) = users::find(tx, used.user)? else {
                    return Ok(Err(PasskeyError::Rejected));
                };
                let detail =
                    json!({ "ip": ip, "passkey": used.passkey, "second_factor": "passkey_alone" });
                record_by_user(tx, now, &user, Action::UserSignedIn, detail)?;
                let client = (ip.as_deref(), ua.as_deref());
                let cookie =
                    me.open_session(tx, user.id, Stage::Full, Some(now), client, now, "hwk")?;
                Ok::<_, PasskeyError>(Ok(cookie))
            })
            .await?
    }

    /// Lets the session user's passkeys sign them in alone, or stops it (after a step-up).
    pub async fn set_passkey_sign_in(
        &self,
        session: &Session,
        allowed: bool,
    ) -> Result<(), AccountError> {
        self.require_step_up(session)?;
        let (user, actor, tenant) = (session.user.id, session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                users::set_passkey_sign_in(tx, user, allowed)?;
                let event =
                    Event::new(Action::UserPasskeySignInChanged, actor, Subject::User(user))
                        .tenant(tenant)
                        .detail(json!({ "allowed": allowed }));
                events::record(tx, now, event)
            })
            .await?;
        Ok(())
    }

    /// Audits a verified passkey use as `action` and rotates the session into a full one
    /// stepped up now.
    async fn stepped_up_by_passkey(
        &self,
        session: &Session,
        passkey: i64,
        ip: Option<&str>,
        action: Action,
    ) -> Result<String, PasskeyError> {
        let now = self.now_ms();
        let me = std::sync::Arc::clone(&self.core);
        let (session, ip) = (session.clone(), ip.map(str::to_owned));
        self.store
            .write(move |tx| {
                let Some(user) = users::find(tx, session.user.id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                let detail = json!({ "ip": ip, "second_factor": "passkey", "passkey": passkey });
                record_by_user(tx, now, &user, action, detail)?;
                Ok::<_, AccountError>(me.stepped_up(tx, &session, ip.as_deref(), now, "hwk"))
            })
            .await?
            .map_err(PasskeyError::from)
    }
}
