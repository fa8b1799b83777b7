//! Tenants and their members: sign-up (a tenant and its owner), operator-created users,
//! one-time invitation links, role changes, disabling, passwords and TOTP enrolment.

use serde_json::json;

use super::roles::Role;
use super::sessions::{Session, Stage};
use super::{AccountError, Accounts, mails, normalize_email, password, totp};
use crate::crypto::tokens::{hash_token, random_token};
use crate::events::{self, Action, Event, Subject};
use crate::store::sessions as stored_sessions;
use crate::store::users::{self, NewInvitation, NewUser as NewUserRow};
use crate::store::{Store, StoreError, Tx, registry, replay};

/// Creates a tenant; returns its id.
pub async fn create_tenant(
    store: &Store,
    now_ms: i64,
    actor: &str,
    name: &str,
) -> Result<i64, AccountError> {
    let name = tenant_name(name)?;
    let actor = actor.to_owned();
    Ok(store
        .write(move |tx| {
            let id = registry::insert_tenant(tx, &name, now_ms)?;
            events::record(
                tx,
                now_ms,
                Event::new(Action::TenantCreated, actor, Subject::Tenant(id))
                    .tenant(Some(id))
                    .detail(json!({ "name": name })),
            )?;
            Ok::<_, StoreError>(id)
        })
        .await?)
}

fn tenant_name(raw: &str) -> Result<String, AccountError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidInput(
            "the company name must be 1–200 characters",
        ));
    }
    Ok(name.to_owned())
}

fn person_name(raw: &str) -> Result<String, AccountError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidInput(
            "the name must be 1–100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// The sign-up form.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub company: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// A user created by an operator (CLI).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// `None` for manufacturer staff.
    pub tenant_id: Option<i64>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
    /// Enrol TOTP at once; the otpauth URI is returned.
    pub totp: bool,
}

/// A member as the users page lists them.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    pub device_access_all: bool,
}

/// What an invitation link offers.
#[derive(Debug, Clone)]
pub struct InvitationView {
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
}

/// A TOTP enrolment in progress.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
}

const SIGNUPS_PER_IP_PER_HOUR: u32 = 10;

/// Counts one use of `bucket` in the current clock hour; refuses past `limit` uses.
fn hourly_limit(
    tx: &mut Tx<'_>,
    bucket: &str,
    limit: u32,
    now: i64,
) -> Result<Result<(), AccountError>, StoreError> {
    let window = now - now.rem_euclid(3_600_000);
    if i64::from(replay::hit(tx, bucket, window)?) > i64::from(limit) {
        return Ok(Err(AccountError::Throttled {
            retry_after_secs: u64::try_from((window + 3_600_000 - now + 999) / 1000).unwrap_or(60),
        }));
    }
    Ok(Ok(()))
}

impl Accounts {
    /// Creates a tenant and its owner, and signs the owner in; returns the session cookie.
    pub async fn sign_up(
        &self,
        form: SignUp,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<String, AccountError> {
        let company = tenant_name(&form.company)?;
        let name = person_name(&form.name)?;
        let email = normalize_email(&form.email)
            .ok_or(AccountError::InvalidInput("enter a valid email address"))?;
        password::check(&form.password, &email)?;
        let hashing = self.admit()?;
        let now = self.now_ms();
        // Counted (and committed) before the password is hashed.
        let bucket = format!("signup:ip:{}", ip.unwrap_or("-"));
        self.store
            .write(move |tx| hourly_limit(tx, &bucket, SIGNUPS_PER_IP_PER_HOUR, now))
            .await??;
        let hash = hashing
            .hash(form.password)
            .await
            .ok_or(AccountError::Internal("password hashing failed"))?;
        drop(hashing);
        let core = std::sync::Arc::clone(&self.core);
        let (ip, ua) = (ip.map(str::to_owned), user_agent.map(str::to_owned));
        self.store
            .write(move |tx| {
                if users::find_by_email(tx, &email)?.is_some() {
                    return Ok(Err(AccountError::EmailTaken));
                }
                let tenant = registry::insert_tenant(tx, &company, now)?;
                let user = users::insert(
                    tx,
                    &NewUserRow {
                        tenant_id: Some(tenant),
                        email: email.clone(),
                        name,
                        role: Role::Owner.as_str().to_owned(),
                        password_hash: hash,
                        status: "active",
                        device_access: "all",
                        created_at: now,
                    },
                )?;
                let actor = format!("user:{user}");
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::TenantCreated,
                        actor.clone(),
                        Subject::Tenant(tenant),
                    )
                    .tenant(Some(tenant))
                    .detail(json!({ "name": company, "via": "sign-up", "ip": ip })),
                )?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserCreated, actor, Subject::User(user))
                        .tenant(Some(tenant))
                        .detail(json!({ "role": "owner" })),
                )?;
                Ok::<_, StoreError>(Ok(core.open_session(
                    tx,
                    user,
                    Stage::Full,
                    None,
                    (ip.as_deref(), ua.as_deref()),
                    now,
                )?))
            })
            .await?
    }

    /// Creates a user directly (operators, from the CLI); returns the id and, with `totp`, the
    /// otpauth URI to hand to the person.
    pub async fn create_user(
        &self,
        actor: &str,
        new: NewUser,
    ) -> Result<(i64, Option<String>), AccountError> {
        let email = normalize_email(&new.email)
            .ok_or(AccountError::InvalidInput("enter a valid email address"))?;
        let name = person_name(&new.name)?;
        password::check(&new.password, &email)?;
        if (new.role == Role::Staff) != new.tenant_id.is_none() {
            return Err(AccountError::InvalidInput(
                "staff have no tenant; every other role needs one",
            ));
        }
        let hash = self.hash_password(new.password).await?;
        let now = self.now_ms();
        let core = std::sync::Arc::clone(&self.core);
        let actor = actor.to_owned();
        let secret = new.totp.then(totp::new_secret);
        self.store
            .write(move |tx| {
                if let Some(t) = new.tenant_id
                    && registry::find_tenant(tx, t)?.is_none()
                {
                    return Ok(Err(AccountError::NotFound));
                }
                if users::find_by_email(tx, &email)?.is_some() {
                    return Ok(Err(AccountError::EmailTaken));
                }
                let id = users::insert(
                    tx,
                    &NewUserRow {
                        tenant_id: new.tenant_id,
                        email: email.clone(),
                        name,
                        role: new.role.as_str().to_owned(),
                        password_hash: hash,
                        status: "active",
                        device_access: "all",
                        created_at: now,
                    },
                )?;
                let uri = match &secret {
                    Some(secret) => {
                        let sealed = core
                            .totp_box
                            .seal(format!("user:{id}").as_bytes(), secret)
                            .ok_or(StoreError::Other("sealing failed".into()))?;
                        users::set_pending_totp(tx, id, &sealed)?;
                        users::enable_totp(tx, id)?;
                        totp::otpauth_uri(secret, "pairgate", &email)
                    }
                    None => None,
                };
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserCreated, actor, Subject::User(id))
                        .tenant(new.tenant_id)
                        .detail(json!({ "role": new.role.as_str(), "totp": secret.is_some() })),
                )?;
                Ok::<_, StoreError>(Ok((id, uri)))
            })
            .await?
    }

    /// Invites someone to the session's tenant by a one-time link sent by mail. An address
    /// with an account in another tenant gets the same answer (and a pending invitation that
    /// can never be accepted), while its owner is told by mail; only a member of this tenant is
    /// reported as taken. At most `portal.invitations_per_tenant_per_hour` per tenant.
    pub async fn invite(
        &self,
        session: &Session,
        email: &str,
        role: Role,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() || !session.user.role.may_assign(role) {
            return Err(AccountError::Forbidden);
        }
        let email = normalize_email(email)
            .ok_or(AccountError::InvalidInput("enter a valid email address"))?;
        let token = random_token();
        let link = format!("{}/invite/{token}", self.settings.server.public_url);
        let now = self.now_ms();
        let lifetime_secs = i64::from(self.settings.portal.invitation_lifetime_secs.get());
        let per_hour = self.settings.portal.invitations_per_tenant_per_hour.get();
        let tenant_name = session
            .tenant
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let inviter = session.user.name.clone();
        let (actor, inviter_id) = (session.actor(), session.user.id);
        let core = std::sync::Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                if let Err(e) = hourly_limit(tx, &format!("invite:tenant:{tenant}"), per_hour, now)?
                {
                    return Ok(Err(e));
                }
                let existing = users::find_by_email(tx, &email)?;
                if existing
                    .as_ref()
                    .is_some_and(|u| u.tenant_id == Some(tenant))
                {
                    return Ok(Err(AccountError::EmailTaken));
                }
                users::insert_invitation(
                    tx,
                    &NewInvitation {
                        tenant_id: tenant,
                        email: email.clone(),
                        role: role.as_str().to_owned(),
                        token_hash: hash_token(&token),
                        invited_by: Some(inviter_id),
                        created_at: now,
                        expires_at: now + lifetime_secs * 1000,
                    },
                )?;
                let subject = format!("{inviter} invites you to {tenant_name} on pairgate");
                if existing.is_some() {
                    let body = mails::text(&mails::InvitationAccountExists {
                        inviter: &inviter,
                        tenant_name: &tenant_name,
                    })?;
                    crate::mail::queue(tx, &email, &subject, &body, now)?;
                } else {
                    let body = mails::text(&mails::Invitation {
                        inviter: &inviter,
                        tenant_name: &tenant_name,
                        role: role.as_str(),
                        days: (lifetime_secs / 86_400).max(1),
                        link: &link,
                    })?;
                    core.outbox.queue_sealed(tx, &email, &subject, &body, now)?;
                }
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserInvited, actor, Subject::Email(email.to_owned()))
                        .tenant(Some(tenant))
                        .detail(json!({ "role": role.as_str() })),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// What an invitation link offers, if it is still good.
    pub async fn invitation(&self, token: &str) -> Result<InvitationView, AccountError> {
        let hash = hash_token(token);
        let now = self.now_ms();
        self.store
            .read(move |tx| {
                let inv = users::find_invitation(tx, &hash)?
                    .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
                    .ok_or(AccountError::InvalidLink)?;
                let tenant =
                    registry::find_tenant(tx, inv.tenant_id)?.ok_or(AccountError::InvalidLink)?;
                Ok(InvitationView {
                    tenant_name: tenant.name,
                    email: inv.email,
                    role: Role::parse(&inv.role).ok_or(AccountError::InvalidLink)?,
                })
            })
            .await
    }

    /// Accepts an invitation: creates the account and signs it in; returns the session cookie.
    pub async fn accept_invitation(
        &self,
        token: &str,
        name: &str,
        new_password: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<String, AccountError> {
        let view = self.invitation(token).await?;
        let name = person_name(name)?;
        password::check(new_password, &view.email)?;
        let hash = self.hash_password(new_password.to_owned()).await?;
        let token_hash = hash_token(token);
        let now = self.now_ms();
        let core = std::sync::Arc::clone(&self.core);
        let (ip, ua) = (ip.map(str::to_owned), user_agent.map(str::to_owned));
        self.store
            .write(move |tx| {
                let Some(inv) = users::find_invitation(tx, &token_hash)? else {
                    return Ok(Err(AccountError::InvalidLink));
                };
                // One use only, even when two people click at once.
                if inv.expires_at <= now || !users::accept_invitation(tx, inv.id, now)? {
                    return Ok(Err(AccountError::InvalidLink));
                }
                if users::find_by_email(tx, &inv.email)?.is_some() {
                    return Ok(Err(AccountError::EmailTaken));
                }
                let id = users::insert(
                    tx,
                    &NewUserRow {
                        tenant_id: Some(inv.tenant_id),
                        email: inv.email.clone(),
                        name,
                        role: inv.role.clone(),
                        password_hash: hash,
                        status: "active",
                        device_access: "all",
                        created_at: now,
                    },
                )?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserJoined, format!("user:{id}"), Subject::User(id))
                        .tenant(Some(inv.tenant_id))
                        .detail(json!({ "role": inv.role, "invitation": inv.id })),
                )?;
                Ok::<_, StoreError>(Ok(core.open_session(
                    tx,
                    id,
                    Stage::Full,
                    None,
                    (ip.as_deref(), ua.as_deref()),
                    now,
                )?))
            })
            .await?
    }

    /// The session's tenant's members and open invitations.
    pub async fn members(
        &self,
        session: &Session,
    ) -> Result<(Vec<UserView>, Vec<(String, Role)>), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        self.store
            .read(move |tx| {
                let members = users::list(tx, Some(tenant))?
                    .into_iter()
                    .filter_map(|u| {
                        Some(UserView {
                            role: Role::parse(&u.role)?,
                            id: u.id,
                            email: u.email,
                            name: u.name,
                            active: u.status == "active",
                            totp_enabled: u.totp_enabled,
                            device_access_all: u.device_access != "selected",
                        })
                    })
                    .collect();
                let invitations = users::pending_invitations(tx, tenant, now)?
                    .into_iter()
                    .filter_map(|i| Some((i.email, Role::parse(&i.role)?)))
                    .collect();
                Ok::<_, AccountError>((members, invitations))
            })
            .await
    }

    /// Changes a member's role (sensitive: needs a fresh step-up). Admins cannot touch owners;
    /// the last active owner cannot be demoted.
    pub async fn change_role(
        &self,
        session: &Session,
        user_id: i64,
        role: Role,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let actor_role = session.user.role;
        if !actor_role.manages_users() || !actor_role.may_assign(role) {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                let current = match managed_member(tx, tenant, actor_role, user_id)? {
                    Ok((_, current)) => current,
                    Err(e) => return Ok(Err(e)),
                };
                if current == Role::Owner
                    && role != Role::Owner
                    && users::count_active_owners(tx, tenant)? <= 1
                {
                    return Ok(Err(AccountError::InvalidInput(
                        "a tenant needs at least one owner",
                    )));
                }
                users::set_role(tx, user_id, role.as_str())?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserRoleChanged, actor, Subject::User(user_id))
                        .tenant(Some(tenant))
                        .detail(json!({ "from": current.as_str(), "to": role.as_str() })),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// Disables (ending every session at once) or re-enables a member (sensitive: needs a
    /// fresh step-up).
    pub async fn set_member_active(
        &self,
        session: &Session,
        user_id: i64,
        active: bool,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let actor_role = session.user.role;
        if !actor_role.manages_users() || user_id == session.user.id {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                if let Err(e) = managed_member(tx, tenant, actor_role, user_id)? {
                    return Ok(Err(e));
                }
                users::set_active(tx, user_id, active)?;
                let action = if active {
                    Action::UserEnabled
                } else {
                    Action::UserDisabled
                };
                events::record(
                    tx,
                    now,
                    Event::new(action, actor, Subject::User(user_id)).tenant(Some(tenant)),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// Disables a user by email, from the CLI (any tenant, or staff).
    pub async fn disable_user(&self, actor: &str, email: &str) -> Result<i64, AccountError> {
        let email = normalize_email(email).ok_or(AccountError::NotFound)?;
        let now = self.now_ms();
        let actor = actor.to_owned();
        self.store
            .write(move |tx| {
                let Some(user) = users::find_by_email(tx, &email)? else {
                    return Ok(Err(AccountError::NotFound));
                };
                users::set_active(tx, user.id, false)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserDisabled, actor, Subject::User(user.id))
                        .tenant(user.tenant_id),
                )?;
                Ok::<_, StoreError>(Ok(user.id))
            })
            .await?
    }

    /// Resets a member's second factor (they lost their phone and their recovery codes): the
    /// secret and recovery codes go, every session of theirs ends, and they are told by mail;
    /// they set TOTP up again at their next sign-in. Sensitive: needs a fresh step-up.
    pub async fn reset_member_totp(
        &self,
        session: &Session,
        user_id: i64,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let actor_role = session.user.role;
        if !actor_role.manages_users() || user_id == session.user.id {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let now = self.now_ms();
        let (actor, admin) = (session.actor(), session.user.name.clone());
        self.store
            .write(move |tx| {
                let target = match managed_member(tx, tenant, actor_role, user_id)? {
                    Ok((target, _)) => target,
                    Err(e) => return Ok(Err(e)),
                };
                users::reset_totp(tx, user_id)?;
                let sessions = stored_sessions::delete_for_user(tx, user_id)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserTotpReset, actor, Subject::User(user_id))
                        .tenant(Some(tenant))
                        .detail(json!({ "sessions": sessions })),
                )?;
                let body = mails::text(&mails::TotpReset {
                    name: &target.name,
                    admin: &admin,
                })?;
                crate::mail::queue(
                    tx,
                    &target.email,
                    "Your pairgate two-factor authentication was reset",
                    &body,
                    now,
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

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
                let body = mails::text(&mails::PasswordChanged {
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
                Ok::<_, AccountError>(core.rotate_session(
                    tx,
                    &session,
                    Stage::Full,
                    Some(now),
                    ip.as_deref(),
                    now,
                ))
            })
            .await??;
        Ok((codes, cookie))
    }
}

/// The member `user_id` of `tenant` and their role, if a person with `actor_role` may manage
/// them: `NotFound` for anyone outside the tenant (no hint that the id exists elsewhere),
/// `Forbidden` for a member whose role the actor may not assign (an admin and an owner).
pub(super) fn managed_member(
    tx: &mut Tx<'_>,
    tenant: i64,
    actor_role: Role,
    user_id: i64,
) -> Result<Result<(users::UserRecord, Role), AccountError>, StoreError> {
    let Some(target) = users::find(tx, user_id)?.filter(|u| u.tenant_id == Some(tenant)) else {
        return Ok(Err(AccountError::NotFound));
    };
    let role = Role::parse(&target.role).unwrap_or(Role::Viewer);
    if !actor_role.may_assign(role) {
        return Ok(Err(AccountError::Forbidden));
    }
    Ok(Ok((target, role)))
}
