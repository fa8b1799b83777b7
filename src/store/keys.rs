//! The signing key ring's rows. Private keys arrive here already encrypted.

use diesel::prelude::*;

use super::schema::signing_keys;
use super::{DbConnection, StoreError, Tx};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_key: String,
    pub created_at: i64,
    pub activates_at: i64,
}

/// Every key, oldest activation first.
pub fn all(tx: &mut Tx<'_>) -> Result<Vec<SigningKeyRecord>, StoreError> {
    Ok(signing_keys::table
        .select(SigningKeyRecord::as_select())
        .order((signing_keys::activates_at.asc(), signing_keys::kid.asc()))
        .load(tx.conn)?)
}

/// Adds a key. On PostgreSQL every instance listening (`notify.rs`) hears of it when the
/// transaction commits.
pub fn insert(tx: &mut Tx<'_>, key: &SigningKeyRecord) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(tx.conn)?;
    if let DbConnection::Pg(_) = tx.conn {
        diesel::sql_query(format!("NOTIFY {}", super::notify::SIGNING_KEYS)).execute(tx.conn)?;
    }
    Ok(())
}

/// Deletes keys whose every token has expired (given by the caller's computation).
pub fn delete(tx: &mut Tx<'_>, kid: &str) -> Result<(), StoreError> {
    diesel::delete(signing_keys::table.find(kid)).execute(tx.conn)?;
    Ok(())
}
