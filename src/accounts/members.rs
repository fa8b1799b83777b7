//! Tenants and their members: sign-up (a tenant and its owner), operator-created users,
//! role changes, disabling and second-factor resets.

use serde_json::json;

use super::roles::Role;
use super::sessions::Session;
use super::{AccountError, Accounts, Core, mails, normalize_email, password, totp};
use crate::events::{self, Action, Event, Subject};
use crate::ids::TenantId;
use crate::ids::UserId;
use crate::meters;
use crate::store::sessions as stored_sessions;
use crate::store::users::{self, ActiveStatus, DeviceAccess, NewUser as NewUserRow};
use crate::store::{Store, StoreError, Tx, registry, replay};

/// Creates a tenant; returns its id.
pub async fn create_tenant(
    store: &Store,
    now_ms: i64,
    actor: &str,
    name: &str,
) -> Result<TenantId, AccountError> {
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

pub(super) fn person_name(raw: &str) -> Result<String, AccountError> {
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
    pub tenant_id: Option<TenantId>,
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
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub totp_enabled: bool,
    /// They hold at least one passkey.
    pub has_passkey: bool,
    pub device_access_all: bool,
}

const SIGNUPS_PER_IP_PER_HOUR: u32 = 10;

impl Core {
    /// Counts one use of `bucket` in the current clock hour; refuses past `limit` uses, recorded
    /// under `meter`.
    pub(super) fn hourly_limit(
        &self,
        tx: &mut Tx<'_>,
        (bucket, limit, meter): (&str, u32, meters::Limit),
        now: i64,
    ) -> Result<Result<(), AccountError>, StoreError> {
        let window = now - now.rem_euclid(3_600_000);
        if i64::from(replay::hit(tx, bucket, window)?) > i64::from(limit) {
            self.meters.throttled(meter);
            return Ok(Err(AccountError::Throttled {
                retry_after_secs: u64::try_from((window + 3_600_000 - now + 999) / 1000)
                    .unwrap_or(60),
            }));
        }
        Ok(Ok(()))
    }
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
        let core = std::sync::Arc::clone(&self.core);
        self.store
            .write(move |tx| {
                let limit = (
                    bucket.as_str(),
                    SIGNUPS_PER_IP_PER_HOUR,
                    meters::Limit::SignUp,
                );
                core.hourly_limit(tx, limit, now)
            })
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
                        role: Role::Owner,
                        password_hash: hash,
                        status: ActiveStatus::Active,
                        device_access: DeviceAccess::All,
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
                let cookie = core.sign_in_created(tx, user, (ip.as_deref(), ua.as_deref()), now)?;
                Ok::<_, StoreError>(Ok(cookie))
            })
            .await?
    }

    /// Creates a user directly (operators, from the CLI); returns the id and, with `totp`, the
    /// otpauth URI to hand to the person.
    pub async fn create_user(
        &self,
        actor: &str,
        new: NewUser,
    ) -> Result<(UserId, Option<String>), AccountError> {
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
                        role: new.role,
                        password_hash: hash,
                        status: ActiveStatus::Active,
                        device_access: DeviceAccess::All,
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

    /// The session's tenant's members and open invitations.
    pub async fn members(
        &self,
        session: &Session,
    ) -> Result<(Vec<UserView>, Vec<(String, Role)>), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        self.store
            .read(move |tx| {
                let holders = crate::store::passkeys::holders_in_tenant(tx, tenant)?;
                let members = users::list(tx, Some(tenant))?
                    .into_iter()
                    .map(|u| UserView {
                        has_passkey: holders.contains(&u.id),
                        role: u.role,
                        id: u.id,
                        email: u.email,
                        name: u.name,
                        active: u.status == ActiveStatus::Active,
                        totp_enabled: u.totp_enabled,
                        device_access_all: u.device_access == DeviceAccess::All,
                    })
                    .collect();
                let invitations = users::pending_invitations(tx, tenant, now)?
                    .into_iter()
                    .map(|i| (i.email, i.role))
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
        user_id: UserId,
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
                users::set_role(tx, user_id, role)?;
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
    pub async fn set_member_status(
        &self,
        session: &Session,
        user_id: UserId,
        status: ActiveStatus,
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
                users::set_status(tx, user_id, status)?;
                let action = match status {
                    ActiveStatus::Active => Action::UserEnabled,
                    ActiveStatus::Disabled => Action::UserDisabled,
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
    pub async fn disable_user(&self, actor: &str, email: &str) -> Result<UserId, AccountError> {
        let email = normalize_email(email).ok_or(AccountError::NotFound)?;
        let now = self.now_ms();
        let actor = actor.to_owned();
        self.store
            .write(move |tx| {
                let Some(user) = users::find_by_email(tx, &email)? else {
                    return Ok(Err(AccountError::NotFound));
                };
                users::set_status(tx, user.id, ActiveStatus::Disabled)?;
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
    /// secret, recovery codes and passkeys go, every session of theirs ends, and they are told
    /// by mail; they set TOTP up again at their next sign-in. Sensitive: needs a fresh step-up.
    pub async fn reset_member_totp(
        &self,
        session: &Session,
        user_id: UserId,
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
                let passkeys = crate::store::passkeys::delete_all_for_user(tx, user_id)?;
                let sessions = stored_sessions::delete_for_user(tx, user_id)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserTotpReset, actor, Subject::User(user_id))
                        .tenant(Some(tenant))
                        .detail(json!({ "sessions": sessions, "passkeys": passkeys })),
                )?;
                let body = crate::mail::render(&mails::TotpReset {
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
}

/// The member `user_id` of `tenant` and their role, if a person with `actor_role` may manage
/// them: `NotFound` for anyone outside the tenant (no hint that the id exists elsewhere),
/// `Forbidden` for a member whose role the actor may not assign (an admin and an owner).
pub(super) fn managed_member(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    actor_role: Role,
    user_id: UserId,
) -> Result<Result<(users::UserRecord, Role), AccountError>, StoreError> {
    let Some(target) = users::find(tx, user_id)?.filter(|u| u.tenant_id == Some(tenant)) else {
        return Ok(Err(AccountError::NotFound));
    };
    let role = target.role;
    if !actor_role.may_assign(role) {
        return Ok(Err(AccountError::Forbidden));
    }
    Ok(Ok((target, role)))
}
