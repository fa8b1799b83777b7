//! Passkeys turned into sessions: the second step of a password sign-in, a step-up, and a
//! sign-in with a passkey alone. The passkey is checked by `passkey_use.rs`; here a verified use
//! becomes a session rotated to full and stepped up now (webauthn-rs's passkeys always ask the
//! authenticator to verify its user, so a passkey is itself a fresh second factor).

use serde_json::json;

use super::login::record_by_user;
use super::passkeys::{PasskeyError, PublicKeyCredential};
use super::sessions::{Session, Stage};
use super::{AccountError, Accounts};
use crate::events::Action;
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

    /// Signs in with a passkey alone (a discoverable credential names its account); returns the
    /// cookie of a full session, stepped up now.
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
        let (ip, ua) = (ip.map(str::to_owned), user_agent.map(str::to_owned));
        self.store
            .write(move |tx| {
                let Some(user) = users::find(tx, used.user)? else {
                    return Ok(Err(PasskeyError::Rejected));
                };
                let detail = json!({ "ip": ip, "passkey": used.passkey, "second_factor": false });
                record_by_user(tx, now, &user, Action::UserSignedIn, detail)?;
                let client = (ip.as_deref(), ua.as_deref());
                let cookie = me.open_session(tx, user.id, Stage::Full, Some(now), client, now)?;
                Ok::<_, PasskeyError>(Ok(cookie))
            })
            .await?
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
                Ok::<_, AccountError>(me.stepped_up(tx, &session, ip.as_deref(), now))
            })
            .await?
            .map_err(PasskeyError::from)
    }
}
