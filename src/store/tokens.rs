//! Refresh-token families (one row per grant; its current token's counter) and revoked
//! access-token ids.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::batch::{Bind, Prepared, ROWS_PER_STATEMENT, fixed_sql};
use super::kinds::ActiveStatus;
pub use super::kinds::FamilyStatus;
use super::schema::{refresh_families, revoked_access_tokens};
use super::{StoreError, Tx};
use crate::ids::TenantId;

/// A refresh-token family: one grant's chain of rotated refresh tokens, of which only the
/// current one (at `counter`) may be used.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_families)]
pub struct FamilyRecord {
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub tenant_id: Option<TenantId>,
    pub scope: String,
    pub jkt: Option<String>,
    /// The counter of the family's current token.
    pub counter: i64,
    pub status: FamilyStatus,
    pub created_at: i64,
    /// When the current token was issued.
    pub issued_at: i64,
    /// The current token's idle expiry (never past the family's).
    pub idle_expires_at: i64,
    pub family_expires_at: i64,
    /// The SHA-256 hash of the family's token from before the counter form, if it has one.
    pub legacy_hash: Option<String>,
    /// The device's token generation the family was issued in (`None` for service clients).
    pub generation: Option<i64>,
}

/// A new family, whose first token (counter 1) is issued at `created_at`.
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub tenant_id: Option<TenantId>,
    pub scope: String,
    pub jkt: Option<String>,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub family_expires_at: i64,
    /// The device's token generation the family starts in (`None` for service clients).
    pub generation: Option<i64>,
}

/// The counter of a family's first token.
pub const FIRST_COUNTER: i64 = 1;

pub fn insert_family(tx: &mut Tx<'_>, family: &NewFamily) -> Result<(), StoreError> {
    // Every pairing runs this: a fixed statement.
    fixed_sql!(
        InsertFamily,
        "INSERT INTO refresh_families (family_id, client_id, subject, tenant_id, scope, jkt, \
         counter, status, created_at, issued_at, idle_expires_at, family_expires_at, \
         generation) VALUES (",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", 'active', ",
        ", ",
        ", ",
        ", ",
        ", ",
        ")",
    );
    Prepared::<InsertFamily, ()>::new(&[
        Bind::Text(&family.family_id),
        Bind::Text(&family.client_id),
        Bind::Text(&family.subject),
        Bind::OptInt(family.tenant_id.map(TenantId::get)),
        Bind::Text(&family.scope),
        Bind::OptText(family.jkt.as_deref()),
        Bind::Int(FIRST_COUNTER),
        Bind::Int(family.created_at),
        Bind::Int(family.created_at),
        Bind::Int(family.idle_expires_at),
        Bind::Int(family.family_expires_at),
        Bind::OptInt(family.generation),
    ])
    .execute(tx.conn)?;
    Ok(())
}

pub fn find_family(tx: &mut Tx<'_>, family_id: &str) -> Result<Option<FamilyRecord>, StoreError> {
    // Every refresh runs this: a fixed statement. The columns are FamilyRecord's fields, in order.
    fixed_sql!(
        FamilyById,
        "SELECT family_id, client_id, subject, tenant_id, scope, jkt, counter, status, \
         created_at, issued_at, idle_expires_at, family_expires_at, legacy_hash, generation \
         FROM refresh_families WHERE family_id = ",
        "",
    );
    Ok(
        Prepared::<FamilyById, refresh_families::SqlType>::new(&[Bind::Text(family_id)])
            .get_result::<FamilyRecord>(tx.conn)
            .optional()?,
    )
}

/// What a device's tokens are checked against wherever they are used: its tenant, its token
/// generation, and whether its client is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTokenState {
    pub tenant_id: Option<TenantId>,
    pub token_generation: i64,
    /// The device's client is enabled.
    pub active: bool,
}

/// [`find_family`] and the token state of the device whose client the family belongs to (`None`
/// for a service client's family, or a device gone since), read in one statement: every refresh
/// needs both.
pub fn find_family_and_device(
    tx: &mut Tx<'_>,
    family_id: &str,
) -> Result<Option<(FamilyRecord, Option<DeviceTokenState>)>, StoreError> {
    fixed_sql!(
        FamilyAndDeviceById,
        "SELECT f.family_id, f.client_id, f.subject, f.tenant_id, f.scope, f.jkt, f.counter, \
         f.status, f.created_at, f.issued_at, f.idle_expires_at, f.family_expires_at, \
         f.legacy_hash, f.generation, d.tenant_id, d.token_generation, c.status \
         FROM refresh_families f LEFT JOIN devices d ON d.serial = f.client_id \
         LEFT JOIN clients c ON c.client_id = d.serial WHERE f.family_id = ",
        "",
    );
    type DeviceColumns = (Nullable<BigInt>, Nullable<BigInt>, Nullable<Text>);
    type DeviceRow = (Option<TenantId>, Option<i64>, Option<ActiveStatus>);
    let row = Prepared::<FamilyAndDeviceById, (refresh_families::SqlType, DeviceColumns)>::new(&[
        Bind::Text(family_id),
    ])
    .get_result::<(FamilyRecord, DeviceRow)>(tx.conn)
    .optional()?;
    Ok(row.map(|(family, (tenant_id, generation, status))| {
        let device = generation
            .zip(status)
            .map(|(token_generation, status)| DeviceTokenState {
                tenant_id,
                token_generation,
                active: status == ActiveStatus::Active,
            });
        (family, device)
    }))
}

/// The family whose token from before the counter form hashes to `hash`.
pub fn find_legacy_family(tx: &mut Tx<'_>, hash: &str) -> Result<Option<FamilyRecord>, StoreError> {
    Ok(refresh_families::table
        .filter(refresh_families::legacy_hash.eq(hash))
        .select(FamilyRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Moves an active family from its current token (`from`) to the next (`to`), issued at
/// `issued_at`; false if the family is no longer at `from` or no longer active (a concurrent
/// use won, or it was revoked).
pub fn advance_family(
    tx: &mut Tx<'_>,
    family_id: &str,
    from: i64,
    to: i64,
    issued_at: i64,
    idle_expires_at: i64,
) -> Result<bool, StoreError> {
    // Every refresh runs this: a fixed statement. No indexed column changes, so PostgreSQL can
    // update the row in place.
    fixed_sql!(
        AdvanceFamily,
        "UPDATE refresh_families SET counter = ",
        ", issued_at = ",
        ", idle_expires_at = ",
        " WHERE family_id = ",
        " AND counter = ",
        " AND status = 'active'",
    );
    let n = Prepared::<AdvanceFamily, ()>::new(&[
        Bind::Int(to),
        Bind::Int(issued_at),
        Bind::Int(idle_expires_at),
        Bind::Text(family_id),
        Bind::Int(from),
    ])
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Revokes a family (RFC 9700 §4.14.2 reuse detection, RFC 7009 revocation); false if it was
/// revoked already or is unknown.
pub fn revoke_family(tx: &mut Tx<'_>, family_id: &str) -> Result<bool, StoreError> {
    let n = diesel::update(
        refresh_families::table
            .find(family_id)
            .filter(refresh_families::status.eq(FamilyStatus::Active)),
    )
    .set(refresh_families::status.eq(FamilyStatus::Revoked))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Revokes every active family of a client; returns how many.
/// Revokes the families `client_id` holds for `subject` (an app's, for one person); returns
/// how many were live.
pub fn revoke_subject_families(
    tx: &mut Tx<'_>,
    client_id: &str,
    subject: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::client_id.eq(client_id))
            .filter(refresh_families::subject.eq(subject))
            .filter(refresh_families::status.eq(FamilyStatus::Active)),
    )
    .set(refresh_families::status.eq(FamilyStatus::Revoked))
    .execute(tx.conn)?)
}

pub fn revoke_client_families(tx: &mut Tx<'_>, client_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::client_id.eq(client_id))
            .filter(refresh_families::status.eq(FamilyStatus::Active)),
    )
    .set(refresh_families::status.eq(FamilyStatus::Revoked))
    .execute(tx.conn)?)
}

/// Records a revoked access token until it would have expired anyway.
pub fn revoke_access_token(tx: &mut Tx<'_>, jti: &str, expires_at: i64) -> Result<(), StoreError> {
    let inserted = tx.conn.transaction(|conn| {
        diesel::insert_into(revoked_access_tokens::table)
            .values((
                revoked_access_tokens::jti.eq(jti),
                revoked_access_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)
    });
    match inserted.map_err(StoreError::from) {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Which of these access-token ids are revoked (one query per few hundred ids).
pub fn revoked_access_tokens(
    tx: &mut Tx<'_>,
    jtis: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut revoked = HashSet::new();
    for chunk in jtis.chunks(ROWS_PER_STATEMENT) {
        revoked.extend(
            revoked_access_tokens::table
                .filter(revoked_access_tokens::jti.eq_any(chunk))
                .select(revoked_access_tokens::jti)
                .load::<String>(tx.conn)?,
        );
    }
    Ok(revoked)
}

pub fn is_access_token_revoked(tx: &mut Tx<'_>, jti: &str) -> Result<bool, StoreError> {
    Ok(revoked_access_tokens::table
        .find(jti)
        .select(revoked_access_tokens::jti)
        .first::<String>(tx.conn)
        .optional()?
        .is_some())
}

/// Deletes what can no longer matter: revoked access-token ids past their expiry, and refresh-token
/// families whose absolute or idle lifetime ended before `before`.
pub fn delete_expired(tx: &mut Tx<'_>, before: i64) -> Result<usize, StoreError> {
    let a = diesel::delete(
        revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(before)),
    )
    .execute(tx.conn)?;
    let b = diesel::delete(
        refresh_families::table.filter(
            refresh_families::family_expires_at
                .lt(before)
                .or(refresh_families::idle_expires_at.lt(before)),
        ),
    )
    .execute(tx.conn)?;
    Ok(a + b)
}
