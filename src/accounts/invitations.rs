//! Invitations: a one-time link by mail into a tenant, what the link offers, and accepting it.

use serde_json::json;

use super::members::person_name;
use super::roles::Role;
use super::sessions::Session;
use super::{AccountError, Accounts, mails, normalize_email, password};
use crate::crypto::tokens::{hash_token, random_token};
use crate::events::{self, Action, Event, Subject};
use crate::meters;
use crate::store::users::{self, ActiveStatus, DeviceAccess, NewInvitation, NewUser as NewUserRow};
use crate::store::{StoreError, registry};

/// What an invitation link offers.
#[derive(Debug, Clone)]
pub struct InvitationView {
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
}

impl Accounts {
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
                let bucket = format!("invite:tenant:{tenant}");
                let limit = (bucket.as_str(), per_hour, meters::Limit::Invitations);
                if let Err(e) = core.hourly_limit(tx, limit, now)? {
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
                        role,
                        token_hash: hash_token(&token),
                        invited_by: Some(inviter_id),
                        created_at: now,
                        expires_at: now + lifetime_secs * 1000,
                    },
                )?;
                let subject = format!("{inviter} invites you to {tenant_name} on pairgate");
                if existing.is_some() {
                    let body = crate::mail::render(&mails::InvitationAccountExists {
                        inviter: &inviter,
                        tenant_name: &tenant_name,
                    })?;
                    crate::mail::queue(tx, &email, &subject, &body, now)?;
                } else {
                    let body = crate::mail::render(&mails::Invitation {
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
                    role: inv.role,
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
                        role: inv.role,
                        password_hash: hash,
                        status: ActiveStatus::Active,
                        device_access: DeviceAccess::All,
                        created_at: now,
                    },
                )?;
                users::mark_email_verified(tx, id)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserJoined, format!("user:{id}"), Subject::User(id))
                        .tenant(Some(inv.tenant_id))
                        .detail(json!({ "role": inv.role.as_str(), "invitation": inv.id })),
                )?;
                let cookie = core.sign_in_created(tx, id, (ip.as_deref(), ua.as_deref()), now)?;
                Ok::<_, StoreError>(Ok(cookie))
            })
            .await?
    }
}
