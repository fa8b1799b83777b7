//! Passkeys (WebAuthn credentials) and the state of ceremonies in progress. The credential itself
//! is webauthn-rs's `Passkey` as JSON: this module stores text and knows nothing of WebAuthn.

use diesel::prelude::*;

use std::collections::HashSet;

use super::schema::{passkey_ceremonies, passkeys, users};
use super::{StoreError, Tx};
use crate::ids::{TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRecord {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    pub credential_id: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = passkeys)]
pub struct NewPasskey<'a> {
    pub user_id: UserId,
    pub name: &'a str,
    pub credential_id: &'a str,
    pub passkey: &'a str,
    pub created_at: i64,
}

/// Inserts a passkey; `Conflict` when the credential is registered already or the user has a
/// passkey of that name.
pub fn insert(tx: &mut Tx<'_>, passkey: &NewPasskey<'_>) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(passkeys::table)
        .values(passkey)
        .returning(passkeys::id)
        .get_result(tx.conn)?)
}

/// A user's passkeys, oldest first.
pub fn list_for_user(tx: &mut Tx<'_>, user_id: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at, passkeys::id))
        .select(PasskeyRecord::as_select())
        .load(tx.conn)?)
}

pub fn count_for_user(tx: &mut Tx<'_>, user_id: UserId) -> Result<i64, StoreError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(tx.conn)?)
}

pub fn find_by_credential(
    tx: &mut Tx<'_>,
    credential_id: &str,
) -> Result<Option<PasskeyRecord>, StoreError> {
    Ok(passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(PasskeyRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Stores a passkey's new state (its counter) after a use, and when it was used.
pub fn record_use(tx: &mut Tx<'_>, id: i64, passkey: &str, now: i64) -> Result<(), StoreError> {
    let changed = diesel::update(passkeys::table.find(id))
        .set((
            passkeys::passkey.eq(passkey),
            passkeys::last_used_at.eq(now),
        ))
        .execute(tx.conn)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// One of a user's passkeys; `None` when the user has no passkey `id`.
pub fn find_for_user(
    tx: &mut Tx<'_>,
    user_id: UserId,
    id: i64,
) -> Result<Option<PasskeyRecord>, StoreError> {
    Ok(passkeys::table
        .filter(passkeys::id.eq(id))
        .filter(passkeys::user_id.eq(user_id))
        .select(PasskeyRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Deletes one of a user's passkeys; returns whether it existed.
pub fn delete(tx: &mut Tx<'_>, user_id: UserId, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::delete(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(tx.conn)?
        == 1)
}

/// The members of a tenant who hold at least one passkey.
pub fn holders_in_tenant(tx: &mut Tx<'_>, tenant: TenantId) -> Result<HashSet<UserId>, StoreError> {
    Ok(passkeys::table
        .inner_join(users::table)
        .filter(users::tenant_id.eq(tenant))
        .select(passkeys::user_id)
        .distinct()
        .load::<UserId>(tx.conn)?
        .into_iter()
        .collect())
}

/// Deletes all of a user's passkeys (an administrator's reset); returns how many.
pub fn delete_all_for_user(tx: &mut Tx<'_>, user_id: UserId) -> Result<usize, StoreError> {
    Ok(diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(tx.conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkey_ceremonies)]
pub struct CeremonyRecord {
    pub id_hash: String,
    pub user_id: Option<UserId>,
    /// `registration`, `authentication` or `discoverable`.
    pub kind: String,
    pub state: String,
    pub expires_at: i64,
}

/// Keeps a ceremony's state until it finishes (or expires); expired states are swept on the way.
pub fn put_ceremony(
    tx: &mut Tx<'_>,
    ceremony: &CeremonyRecord,
    now: i64,
) -> Result<(), StoreError> {
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::expires_at.le(now)))
        .execute(tx.conn)?;
    diesel::insert_into(passkey_ceremonies::table)
        .values(ceremony)
        .execute(tx.conn)?;
    Ok(())
}

/// Reads and deletes a ceremony's state in one statement, so it serves once. `None` when there is
/// no such ceremony, it was used already, it is of another kind, or it has expired.
pub fn take_ceremony(
    tx: &mut Tx<'_>,
    id_hash: &str,
    kind: &str,
    now: i64,
) -> Result<Option<CeremonyRecord>, StoreError> {
    let taken: Option<(Option<UserId>, String, String, i64)> =
        diesel::delete(passkey_ceremonies::table.find(id_hash))
            .returning((
                passkey_ceremonies::user_id,
                passkey_ceremonies::kind,
                passkey_ceremonies::state,
                passkey_ceremonies::expires_at,
            ))
            .get_result(tx.conn)
            .optional()?;
    Ok(taken
        .map(|(user_id, kind, state, expires_at)| CeremonyRecord {
            id_hash: id_hash.to_owned(),
            user_id,
            kind,
            state,
            expires_at,
        })
        .filter(|c| c.kind == kind && c.expires_at > now))
}
