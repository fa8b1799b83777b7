//! Refresh tokens (stored as hashes, rotated, revoked by family) and revoked access-token ids.

use diesel::prelude::*;

use super::batch::{Bind, Prepared, fixed_sql};
use super::schema::{refresh_tokens, revoked_access_tokens};
use super::{StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshStatus {
    Active,
    Consumed,
    Revoked,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshRow {
    id: i64,
    token_hash: String,
    family_id: String,
    client_id: String,
    subject: String,
    tenant_id: Option<i64>,
    scope: String,
    jkt: Option<String>,
    status: String,
    created_at: i64,
    idle_expires_at: i64,
    family_expires_at: i64,
}

/// A stored refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub id: i64,
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub tenant_id: Option<i64>,
    pub scope: String,
    pub jkt: Option<String>,
    pub status: RefreshStatus,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub family_expires_at: i64,
}

impl TryFrom<RefreshRow> for RefreshRecord {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> Result<Self, StoreError> {
        let status = match r.status.as_str() {
            "active" => RefreshStatus::Active,
            "consumed" => RefreshStatus::Consumed,
            "revoked" => RefreshStatus::Revoked,
            other => return Err(StoreError::Other(format!("unknown token status {other:?}"))),
        };
        Ok(Self {
            status,
            id: r.id,
            token_hash: r.token_hash,
            family_id: r.family_id,
            client_id: r.client_id,
            subject: r.subject,
            tenant_id: r.tenant_id,
            scope: r.scope,
            jkt: r.jkt,
            created_at: r.created_at,
            idle_expires_at: r.idle_expires_at,
            family_expires_at: r.family_expires_at,
        })
    }
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub tenant_id: Option<i64>,
    pub scope: String,
    pub jkt: Option<String>,
    pub status: &'static str,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub family_expires_at: i64,
}

pub fn insert_refresh(tx: &mut Tx<'_>, token: &NewRefresh) -> Result<(), StoreError> {
    // Every refresh and every pairing runs this: a fixed statement.
    fixed_sql!(
        InsertRefresh,
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, tenant_id, scope, \
         jkt, status, created_at, idle_expires_at, family_expires_at) VALUES (",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ", ",
        ")",
    );
    Prepared::<InsertRefresh, ()>::new(&[
        Bind::Text(&token.token_hash),
        Bind::Text(&token.family_id),
        Bind::Text(&token.client_id),
        Bind::Text(&token.subject),
        Bind::OptInt(token.tenant_id),
        Bind::Text(&token.scope),
        Bind::OptText(token.jkt.as_deref()),
        Bind::Text(token.status),
        Bind::Int(token.created_at),
        Bind::Int(token.idle_expires_at),
        Bind::Int(token.family_expires_at),
    ])
    .execute(tx.conn)?;
    Ok(())
}

pub fn find_refresh(tx: &mut Tx<'_>, hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
    // Every refresh runs this: a fixed statement. The columns are RefreshRow's fields, in order.
    fixed_sql!(
        RefreshByHash,
        "SELECT id, token_hash, family_id, client_id, subject, tenant_id, scope, jkt, status, \
         created_at, idle_expires_at, family_expires_at FROM refresh_tokens WHERE token_hash = ",
        "",
    );
    Prepared::<RefreshByHash, refresh_tokens::SqlType>::new(&[Bind::Text(hash)])
        .get_result::<RefreshRow>(tx.conn)
        .optional()?
        .map(RefreshRecord::try_from)
        .transpose()
}

/// Marks an active token consumed; false if it was not active any more (a concurrent use won).
pub fn consume_refresh(tx: &mut Tx<'_>, id: i64) -> Result<bool, StoreError> {
    // Every refresh runs this: a statement prepared once per connection.
    fixed_sql!(
        ConsumeRefresh,
        "UPDATE refresh_tokens SET status = 'consumed' WHERE id = ",
        " AND status = 'active'",
    );
    let n = Prepared::<ConsumeRefresh, ()>::new(&[Bind::Int(id)]).execute(tx.conn)?;
    Ok(n == 1)
}

/// Revokes every token of a family (RFC 9700 §4.14.2 reuse detection); returns how many changed.
pub fn revoke_family(tx: &mut Tx<'_>, family_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::status.ne("revoked")),
    )
    .set(refresh_tokens::status.eq("revoked"))
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

pub fn is_access_token_revoked(tx: &mut Tx<'_>, jti: &str) -> Result<bool, StoreError> {
    Ok(revoked_access_tokens::table
        .find(jti)
        .select(revoked_access_tokens::jti)
        .first::<String>(tx.conn)
        .optional()?
        .is_some())
}

/// Deletes what can no longer matter: revoked access-token ids past their expiry, and refresh
/// tokens whose family or idle lifetime ended before `before`.
pub fn delete_expired(tx: &mut Tx<'_>, before: i64) -> Result<usize, StoreError> {
    let a = diesel::delete(
        revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(before)),
    )
    .execute(tx.conn)?;
    let b = diesel::delete(
        refresh_tokens::table.filter(
            refresh_tokens::family_expires_at
                .lt(before)
                .or(refresh_tokens::idle_expires_at.lt(before)),
        ),
    )
    .execute(tx.conn)?;
    Ok(a + b)
}
