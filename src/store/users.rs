//! Users, their recovery codes, and invitations.

use diesel::prelude::*;

pub use super::kinds::{ActiveStatus, DeviceAccess, Role};
use super::schema::{invitations, recovery_codes, sessions, users};
use super::{StoreError, Tx};
use crate::ids::TenantId;
use crate::ids::UserId;

/// A stored user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub status: ActiveStatus,
    pub device_access: DeviceAccess,
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub created_at: i64,
    /// The person's own time zone (an IANA name), if they chose one.
    pub time_zone: Option<String>,
    /// Their passkeys may sign them in alone, without the password.
    pub passkey_sign_in: bool,
    /// They joined by an emailed invitation, so they read mail at `email`.
    pub email_verified: bool,
}

/// A user to create.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub status: ActiveStatus,
    pub device_access: DeviceAccess,
    pub created_at: i64,
}

/// Inserts a user; `Conflict` when the email is taken.
pub fn insert(tx: &mut Tx<'_>, user: &NewUser) -> Result<UserId, StoreError> {
    Ok(diesel::insert_into(users::table)
        .values(user)
        .returning(users::id)
        .get_result(tx.conn)?)
}

/// Records that the person read mail at their address (they followed an emailed link).
pub fn mark_email_verified(tx: &mut Tx<'_>, id: UserId) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::email_verified.eq(true))
        .execute(tx.conn)?;
    Ok(())
}

pub fn find(tx: &mut Tx<'_>, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

pub fn find_by_email(tx: &mut Tx<'_>, email: &str) -> Result<Option<UserRecord>, StoreError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(UserRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// A tenant's users, by name; or the staff (tenant `None`).
pub fn list(tx: &mut Tx<'_>, tenant_id: Option<TenantId>) -> Result<Vec<UserRecord>, StoreError> {
    let query = users::table
        .select(UserRecord::as_select())
        .order(users::email.asc());
    Ok(match tenant_id {
        Some(t) => query.filter(users::tenant_id.eq(t)).load(tx.conn)?,
        None => query.filter(users::tenant_id.is_null()).load(tx.conn)?,
    })
}

/// Owners of a tenant that are still active (the last one may not be demoted or disabled).
pub fn count_active_owners(tx: &mut Tx<'_>, tenant_id: TenantId) -> Result<i64, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::role.eq(Role::Owner))
        .filter(users::status.eq(ActiveStatus::Active))
        .count()
        .get_result(tx.conn)?)
}

pub fn set_role(tx: &mut Tx<'_>, id: UserId, role: Role) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::role.eq(role))
        .execute(tx.conn)?;
    Ok(())
}

/// Disables or enables a user; disabling also ends every session.
pub fn set_status(tx: &mut Tx<'_>, id: UserId, status: ActiveStatus) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::status.eq(status))
        .execute(tx.conn)?;
    if status == ActiveStatus::Disabled {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(tx.conn)?;
    }
    Ok(())
}

/// Renames a user.
pub fn set_name(tx: &mut Tx<'_>, id: UserId, name: &str) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(tx.conn)?;
    Ok(())
}

pub fn set_password_hash(tx: &mut Tx<'_>, id: UserId, hash: &str) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(tx.conn)?;
    Ok(())
}

pub fn set_device_access(
    tx: &mut Tx<'_>,
    id: UserId,
    access: DeviceAccess,
) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::device_access.eq(access))
        .execute(tx.conn)?;
    Ok(())
}

/// Stores a new, not yet confirmed, sealed TOTP secret (enrolment restarts from scratch).
pub fn set_pending_totp(tx: &mut Tx<'_>, id: UserId, sealed: &str) -> Result<(), StoreError> {
    diesel::update(users::table.find(id).filter(users::totp_enabled.eq(false)))
        .set((
            users::totp_secret.eq(sealed),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(tx.conn)?;
    Ok(())
}

pub fn enable_totp(tx: &mut Tx<'_>, id: UserId) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::totp_enabled.eq(true))
        .execute(tx.conn)?;
    Ok(())
}

/// Whether the user's passkeys may sign them in alone (`users.passkey_sign_in`).
pub fn set_passkey_sign_in(tx: &mut Tx<'_>, id: UserId, allowed: bool) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::passkey_sign_in.eq(allowed))
        .execute(tx.conn)?;
    Ok(())
}

/// Forgets a user's second factor (an administrator's reset): secret, enrolment, last used
/// step and recovery codes.
pub fn reset_totp(tx: &mut Tx<'_>, id: UserId) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_secret.eq(None::<String>),
            users::totp_enabled.eq(false),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(tx.conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(id)))
        .execute(tx.conn)?;
    Ok(())
}

/// Records the use of TOTP time step `step` if it is later than the last one used. Returns false
/// for a reused (or older) step: of two concurrent submits of one code, one gets false.
pub fn use_totp_step(tx: &mut Tx<'_>, id: UserId, step: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        users::table.find(id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Replaces a user's recovery codes (hashes).
pub fn replace_recovery_codes(
    tx: &mut Tx<'_>,
    user_id: UserId,
    hashes: &[String],
) -> Result<(), StoreError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(tx.conn)?;
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash),
            ))
            .execute(tx.conn)?;
    }
    Ok(())
}

/// Spends an unused recovery code; false if unknown or already used.
pub fn use_recovery_code(
    tx: &mut Tx<'_>,
    user_id: UserId,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// How many recovery codes a user was given (used or not).
pub fn recovery_codes_given(tx: &mut Tx<'_>, user_id: UserId) -> Result<i64, StoreError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .count()
        .get_result(tx.conn)?)
}

pub fn unused_recovery_codes(tx: &mut Tx<'_>, user_id: UserId) -> Result<i64, StoreError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(tx.conn)?)
}

/// A stored invitation.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct InvitationRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: Option<UserId>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = invitations)]
pub struct NewInvitation {
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: Option<UserId>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub fn insert_invitation(tx: &mut Tx<'_>, inv: &NewInvitation) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(invitations::table)
        .values(inv)
        .returning(invitations::id)
        .get_result(tx.conn)?)
}

pub fn find_invitation(
    tx: &mut Tx<'_>,
    token_hash: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    Ok(invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .select(InvitationRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Marks an invitation used; false if it already was (one-time links).
pub fn accept_invitation(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::accepted_at.is_null()),
    )
    .set(invitations::accepted_at.eq(now))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Open invitations of a tenant.
pub fn pending_invitations(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    now: i64,
) -> Result<Vec<InvitationRecord>, StoreError> {
    Ok(invitations::table
        .filter(invitations::tenant_id.eq(tenant_id))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .select(InvitationRecord::as_select())
        .order(invitations::created_at.desc())
        .load(tx.conn)?)
}
