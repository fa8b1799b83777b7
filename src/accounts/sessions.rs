//! Server-side sessions. The cookie holds 256 random bits; the database holds only their hash.
//! Sessions end after `portal.session_idle_secs` without use or `portal.session_absolute_secs`
//! after sign-in, when the user signs out (here or everywhere), or when the user is disabled.
//! The id changes at every privilege change (sign-in, second factor, step-up).

use super::roles::Role;
use super::zone::{TimeZones, Zone};
use super::{AccountError, Accounts, Core};
use crate::crypto::tokens::{hash_token, random_token};
use crate::events::{self, Action, Event, Subject};
use crate::ids::TenantId;
use crate::ids::UserId;
use crate::store::passkeys;
use crate::store::registry::{self, TenantRecord};
use crate::store::sessions::{self as stored, SessionRecord};
use crate::store::users::{self, ActiveStatus, DeviceAccess, UserRecord};
use crate::store::{StoreError, Tx};

/// How far a session has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password checked; the second factor is still awaited. Only the TOTP page accepts it.
    SecondFactor,
    /// Signed in.
    Full,
}

/// A user as the portal sees them.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub device_access_all: bool,
    pub totp_enabled: bool,
    /// The person has at least one passkey (a second factor, like TOTP).
    pub has_passkey: bool,
    /// Their passkeys may sign them in alone.
    pub passkey_sign_in: bool,
    /// The zone the person chose, if any (see [`Session::zone`]).
    pub time_zone: Option<Zone>,
}

impl SessionUser {
    /// TOTP or a passkey: what a sign-in's second step and a step-up can check.
    pub fn has_second_factor(&self) -> bool {
        self.totp_enabled || self.has_passkey
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The hash of the cookie value: the session's identity, and the CSRF binding.
    pub id_hash: String,
    pub stage: Stage,
    pub user: SessionUser,
    pub tenant: Option<TenantRecord>,
    pub created_at: i64,
    pub stepped_up_at: Option<i64>,
    /// How the person authenticated (OpenID Connect `amr` values: `pwd`, `otp`, `hwk`).
    pub amr: Vec<String>,
}

impl Session {
    /// When the person last proved who they are: the last step-up (a second factor is one), or
    /// the sign-in.
    pub fn auth_time(&self) -> i64 {
        self.stepped_up_at
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    /// The audit actor for this session's user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.id)
    }

    /// The tenant requires a second factor, or the user is the manufacturer's staff, and this
    /// user has none yet (neither TOTP nor a passkey): only enrolment is open.
    pub fn must_enrol_totp(&self) -> bool {
        !self.user.has_second_factor()
            && (self.user.role == Role::Staff
                || self.tenant.as_ref().is_some_and(|t| t.require_totp))
    }

    /// The person's time zones as this session read them (with its user and tenant rows, so
    /// showing a time in the viewer's zone costs no query).
    pub fn time_zones(&self) -> TimeZones {
        TimeZones {
            own: self.user.time_zone,
            company: self
                .tenant
                .as_ref()
                .and_then(|t| t.time_zone.as_deref())
                .and_then(Zone::parse),
        }
    }

    /// The zone this session's pages show times in: the person's, else the company's, else UTC.
    pub fn zone(&self) -> Zone {
        self.time_zones().zone()
    }
}

/// Only the second-factor page accepts a half-signed-in session, and only briefly.
const SECOND_FACTOR_WINDOW_MS: i64 = 5 * 60_000;
/// `last_seen_at` is written at most this often (a write per page view buys nothing).
const TOUCH_EVERY_MS: i64 = 60_000;

pub(super) fn user_view(u: &UserRecord, has_passkey: bool) -> SessionUser {
    SessionUser {
        has_passkey,
        passkey_sign_in: u.passkey_sign_in,
        id: u.id,
        tenant_id: u.tenant_id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role,
        device_access_all: u.device_access == DeviceAccess::All,
        totp_enabled: u.totp_enabled,
        time_zone: u.time_zone.as_deref().and_then(Zone::parse),
    }
}

impl Core {
    /// Signs in a person whose account was just created with the password they chose: a full
    /// session with no step-up yet; returns the cookie value.
    pub(super) fn sign_in_created(
        &self,
        tx: &mut Tx<'_>,
        user_id: UserId,
        client: (Option<&str>, Option<&str>),
        now: i64,
    ) -> Result<String, StoreError> {
        self.open_session(tx, user_id, Stage::Full, None, client, now, "pwd")
    }

    /// Creates a session inside the caller's transaction; returns the cookie value.
    #[expect(clippy::too_many_arguments, reason = "a session's fields, each named")]
    pub(super) fn open_session(
        &self,
        tx: &mut Tx<'_>,
        user_id: UserId,
        stage: Stage,
        stepped_up_at: Option<i64>,
        (ip, user_agent): (Option<&str>, Option<&str>),
        now: i64,
        amr: &str,
    ) -> Result<String, StoreError> {
        let token = random_token();
        let p = &self.settings.portal;
        let lifetime = match stage {
            Stage::SecondFactor => SECOND_FACTOR_WINDOW_MS,
            Stage::Full => i64::from(p.session_absolute_secs.get()) * 1000,
        };
        stored::insert(
            tx,
            &SessionRecord {
                id_hash: hash_token(&token),
                user_id,
                stage: match stage {
                    Stage::SecondFactor => "mfa",
                    Stage::Full => "full",
                }
                .to_owned(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + lifetime,
                stepped_up_at,
                ip: ip.map(|s| s.chars().take(64).collect()),
                user_agent: user_agent.map(|s| s.chars().take(256).collect()),
                amr: amr.to_owned(),
            },
        )?;
        Ok(token)
    }

    /// Replaces a session with a new id inside the caller's transaction (the old id stops
    /// working at once), adding `method` to how the person authenticated; returns the new
    /// cookie value.
    #[expect(clippy::too_many_arguments, reason = "a session's fields, each named")]
    pub(super) fn rotate_session(
        &self,
        tx: &mut Tx<'_>,
        session: &Session,
        stage: Stage,
        stepped_up_at: Option<i64>,
        ip: Option<&str>,
        now: i64,
        method: Option<&str>,
    ) -> Result<String, AccountError> {
        let old = stored::find(tx, &session.id_hash)?;
        if !stored::delete(tx, &session.id_hash)? {
            return Err(AccountError::SessionEnded);
        }
        let mut amr = session.amr.clone();
        if let Some(m) = method.filter(|m| !amr.iter().any(|a| a == m)) {
            amr.push(m.to_owned());
        }
        let amr = amr.join(" ");
        let client = (ip, None);
        let token =
            self.open_session(tx, session.user.id, stage, stepped_up_at, client, now, &amr)?;
        if let Some(old) = old {
            stored::carry_over(
                tx,
                &hash_token(&token),
                old.created_at,
                old.user_agent.as_deref(),
            )?;
        }
        Ok(token)
    }
}

impl Accounts {
    /// The live session for a cookie value, if any (expired ones are deleted on sight).
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, AccountError> {
        if cookie.len() != 43 {
            return Ok(None);
        }
        let id_hash = hash_token(cookie);
        let now = self.now_ms();
        let idle = i64::from(self.settings.portal.session_idle_secs.get()) * 1000;
        self.store
            .read(move |tx| {
                let Some(record) = stored::find(tx, &id_hash)? else {
                    return Ok(None);
                };
                if now >= record.expires_at || now - record.last_seen_at >= idle {
                    stored::delete(tx, &id_hash)?;
                    return Ok(None);
                }
                let Some(user) = users::find(tx, record.user_id)? else {
                    return Ok(None);
                };
                if user.status != ActiveStatus::Active {
                    return Ok(None);
                }
                let has_passkey = passkeys::count_for_user(tx, user.id)? > 0;
                let view = user_view(&user, has_passkey);
                let tenant = match user.tenant_id {
                    Some(t) => registry::find_tenant(tx, t)?,
                    None => None,
                };
                if now - record.last_seen_at >= TOUCH_EVERY_MS {
                    stored::touch(tx, &id_hash, now)?;
                }
                Ok::<_, AccountError>(Some(Session {
                    id_hash,
                    stage: if record.stage == "full" {
                        Stage::Full
                    } else {
                        Stage::SecondFactor
                    },
                    user: view,
                    tenant,
                    created_at: record.created_at,
                    stepped_up_at: record.stepped_up_at,
                    amr: record.amr.split(' ').map(str::to_owned).collect(),
                }))
            })
            .await
    }

    /// The person an app acts for with their access token, seen as the portal sees a session of
    /// theirs (the same device access, the same rules), though no session stands behind it:
    /// `None` when the person is gone or disabled.
    pub async fn acting_for(&self, user: UserId) -> Result<Option<Session>, AccountError> {
        let now = self.now_ms();
        self.store
            .read(move |tx| {
                let Some(record) = users::find(tx, user)? else {
                    return Ok(None);
                };
                if record.status != ActiveStatus::Active {
                    return Ok(None);
                }
                let has_passkey = passkeys::count_for_user(tx, record.id)? > 0;
                let tenant = match record.tenant_id {
                    Some(t) => registry::find_tenant(tx, t)?,
                    None => None,
                };
                Ok::<_, AccountError>(Some(Session {
                    id_hash: String::new(),
                    stage: Stage::Full,
                    user: user_view(&record, has_passkey),
                    tenant,
                    created_at: now,
                    stepped_up_at: None,
                    amr: Vec::new(),
                }))
            })
            .await
    }

    /// Ends this session.
    pub async fn sign_out(&self, session: &Session) -> Result<(), AccountError> {
        let id = session.id_hash.clone();
        let user = session.user.id;
        let actor = session.actor();
        let tenant = session.user.tenant_id;
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                stored::delete(tx, &id)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserSignedOut, actor, Subject::User(user)).tenant(tenant),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Ends every session of this session's user, on every device.
    pub async fn sign_out_everywhere(&self, session: &Session) -> Result<usize, AccountError> {
        let user = session.user.id;
        let actor = session.actor();
        let tenant = session.user.tenant_id;
        let now = self.now_ms();
        Ok(self
            .store
            .write(move |tx| {
                let n = stored::delete_for_user(tx, user)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserSignedOut, actor, Subject::User(user))
                        .tenant(tenant)
                        .detail(serde_json::json!({ "everywhere": true, "sessions": n })),
                )?;
                Ok::<_, StoreError>(n)
            })
            .await?)
    }
}
