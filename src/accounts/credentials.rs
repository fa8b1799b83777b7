//! The signed-in person's own credentials: changing the password and enrolling TOTP.

use serde_json::json;

use super::sessions::{Session, Stage};
use super::{AccountError, Accounts, mails, password, totp};
use crate::events::{self, Action, Event, Subject};
use crate::store::sessions as stored_sessions;
use crate::store::users;

/// A TOTP enrolment in progress.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
}

impl Accounts {
    /// Changes the session user's password. The current one is required (counted in the
    /// account's second-factor budget); every other session of the user ends, and this one
    /// gets a new id, which is returned as the new session cookie.
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new_password: &str,
        ip: Option<&str>,
    ) -> Result<String, AccountError> {
        password::check(new_password, &session.user.email)?;
        let hashing = self.admit()?;
        let user = self
            .check_current_password(session, current, ip, &hashing)
            .await?;
        let hash = hashing
            .hash(new_password.to_owned())
            .await
            .ok_or(AccountError::Internal("password hashing failed"))?;
        drop(hashing);
        let now = self.now_ms();
        let core = std::sync::Arc::clone(&self.core);
        let (session, ip) = (session.clone(), ip.map(str::to_owned));
        self.store
            .write(move |tx| {
                core.current_password_passed(tx, user.id)?;
                users::set_password_hash(tx, user.id, &hash)?;
                let ended = stored_sessions::delete_others_of_user(tx, user.id, &session.id_hash)?;
                let actor = session.actor();
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserPasswordChanged, actor, Subject::User(user.id))
                        .tenant(user.tenant_id)
                        .detail(json!({ "ip": ip, "other_sessions_ended": ended })),
                )?;
                let body = crate::mail::render(&mails::PasswordChanged {
                    name: &user.name,
                    address: ip.as_deref().unwrap_or("an unknown address"),
                })?;
                crate::mail::queue(
                    tx,
                    &user.email,
                    "Your pairgate password was changed",
                    &body,
                    now,
                )?;
                core.rotate_session(
                    tx,
                    &session,
                    Stage::Full,
                    session.stepped_up_at,
                    ip.as_deref(),
                    now,
                    None,
                )
            })
            .await
    }

    /// Starts (or shows again) TOTP enrolment for the session user.
    pub async fn begin_totp_enrolment(
        &self,
        session: &Session,
    ) -> Result<TotpEnrolment, AccountError> {
        if session.user.totp_enabled {
            return Err(AccountError::InvalidInput(
                "two-factor authentication is already set up",
            ));
        }
        let id = session.user.id;
        let aad = format!("user:{id}");
        let existing = self
            .store
            .read(move |tx| users::find(tx, id))
            .await?
            .and_then(|u| u.totp_secret);
        let secret =
            match existing.and_then(|sealed| self.core.totp_box.open(aad.as_bytes(), &sealed)) {
                Some(secret) => secret,
                None => {
                    let secret = totp::new_secret();
                    let sealed = self
                        .core
                        .totp_box
                        .seal(aad.as_bytes(), &secret)
                        .ok_or(AccountError::Internal("sealing failed"))?;
                    self.store
                        .write(move |tx| users::set_pending_totp(tx, id, &sealed))
                        .await?;
                    secret
                }
            };
        let uri = totp::otpauth_uri(&secret, "pairgate", &session.user.email)
            .ok_or(AccountError::Internal("otpauth URI"))?;
        Ok(TotpEnrolment {
            qr_svg: totp::qr_svg(&uri).ok_or(AccountError::Internal("QR code"))?,
            secret_base32: totp::secret_base32(&secret),
            uri,
        })
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown once) and the
    /// rotated session cookie (the confirmation counts as a step-up).
    pub async fn confirm_totp_enrolment(
        &self,
        session: &Session,
        code: &str,
        ip: Option<&str>,
    ) -> Result<(Vec<String>, String), AccountError> {
        if session.user.totp_enabled {
            return Err(AccountError::InvalidInput(
                "two-factor authentication is already set up",
            ));
        }
        let codes = totp::recovery_codes();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| totp::hash_recovery_code(c))
            .collect();
        let now = self.now_ms();
        let core = std::sync::Arc::clone(&self.core);
        let (session, code, ip) = (
            session.clone(),
            code.trim().to_owned(),
            ip.map(str::to_owned),
        );
        let cookie = self
            .store
            .write(move |tx| {
                let Some(user) = users::find(tx, session.user.id)? else {
                    return Ok(Err(AccountError::SessionEnded));
                };
                if !core.check_totp(tx, &user, &code, now)? {
                    return Ok(Err(AccountError::InvalidCode));
                }
                users::enable_totp(tx, user.id)?;
                users::replace_recovery_codes(tx, user.id, &hashes)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::UserTotpEnrolled,
                        session.actor(),
                        Subject::User(user.id),
                    )
                    .tenant(user.tenant_id),
                )?;
                Ok::<_, AccountError>(core.stepped_up(tx, &session, ip.as_deref(), now, "otp"))
            })
            .await??;
        Ok((codes, cookie))
    }
}
