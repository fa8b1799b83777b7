//! The audit log's storage: append-only rows, each hash-chained to the one before. Appends
//! serialise on the single `audit_chain` row (a row lock on PostgreSQL, the writer lock on SQLite),
//! so the chain never forks, and they can join any write transaction so that an event and the
//! state change it describes commit together.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{audit_chain, audit_events};
use super::{Store, StoreError, Tx};
use crate::ids::TenantId;

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    /// Unix milliseconds.
    pub occurred_at: i64,
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// Compact JSON.
    pub detail: String,
}

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRecord {
    pub id: i64,
    pub occurred_at: i64,
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct AuditInsert<'a> {
    occurred_at: i64,
    tenant_id: Option<TenantId>,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    detail: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

/// The chain hash: SHA-256 over the previous hash and every field, each length-prefixed so that
/// no two different events encode alike.
pub fn chain_hash(prev_hash: &str, rec: &NewAuditRecord) -> String {
    let mut h = Sha256::new();
    let tenant = rec.tenant_id.map(|t| t.to_string()).unwrap_or_default();
    let occurred = rec.occurred_at.to_string();
    for field in [
        prev_hash,
        &occurred,
        &tenant,
        &rec.actor,
        &rec.action,
        &rec.subject,
        &rec.detail,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends inside the caller's transaction.
pub fn append(tx: &mut Tx<'_>, rec: &NewAuditRecord) -> Result<i64, StoreError> {
    let conn = &mut *tx.conn;
    // Touch the head row first: on PostgreSQL this takes its row lock until commit.
    diesel::update(audit_chain::table.find(1))
        .set(audit_chain::last_id.eq(audit_chain::last_id))
        .execute(conn)?;
    let prev_hash: String = audit_chain::table
        .find(1)
        .select(audit_chain::last_hash)
        .first(conn)?;
    let hash = chain_hash(&prev_hash, rec);
    let id: i64 = diesel::insert_into(audit_events::table)
        .values(AuditInsert {
            occurred_at: rec.occurred_at,
            tenant_id: rec.tenant_id,
            actor: &rec.actor,
            action: &rec.action,
            subject: &rec.subject,
            detail: &rec.detail,
            prev_hash: &prev_hash,
            hash: &hash,
        })
        .returning(audit_events::id)
        .get_result(conn)?;
    diesel::update(audit_chain::table.find(1))
        .set((
            audit_chain::last_id.eq(id),
            audit_chain::last_hash.eq(&hash),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The newest events about one subject (e.g. `device:SN-1`), inside the caller's connection.
pub fn for_subject(
    tx: &mut Tx<'_>,
    subject: &str,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    Ok(audit_events::table
        .filter(audit_events::subject.eq(subject))
        .select(AuditRecord::as_select())
        .order(audit_events::id.desc())
        .limit(limit)
        .load(tx.conn)?)
}

/// Where verification of the chain stopped, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every row links to the one before and the head matches the last row.
    Intact { events: u64 },
    /// The row with this id does not match its hash or its predecessor.
    BrokenAt { id: i64 },
}

impl Store {
    /// Appends one event in its own transaction.
    pub async fn append_audit(&self, rec: NewAuditRecord) -> Result<i64, StoreError> {
        self.write(move |tx| append(tx, &rec)).await
    }

    /// Events, newest first, optionally only one tenant's, before an id (for paging).
    pub async fn audit_page(
        &self,
        tenant_id: Option<TenantId>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |tx| {
            let conn = &mut *tx.conn;
            let mut query = audit_events::table
                .select(AuditRecord::as_select())
                .order(audit_events::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(tenant) = tenant_id {
                query = query.filter(audit_events::tenant_id.eq(tenant));
            }
            if let Some(before) = before_id {
                query = query.filter(audit_events::id.lt(before));
            }
            Ok(query.load(conn)?)
        })
        .await
    }

    /// Recomputes the whole chain, in pages, and compares it with the stored hashes and head.
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        self.read(|tx| {
            let conn = &mut *tx.conn;
            const PAGE: i64 = 1000;
            let mut prev_hash = String::new();
            let mut after = 0i64;
            let mut events = 0u64;
            loop {
                let rows: Vec<AuditRecord> = audit_events::table
                    .select(AuditRecord::as_select())
                    .filter(audit_events::id.gt(after))
                    .order(audit_events::id.asc())
                    .limit(PAGE)
                    .load(conn)?;
                let Some(last) = rows.last() else { break };
                after = last.id;
                for row in &rows {
                    let rec = NewAuditRecord {
                        occurred_at: row.occurred_at,
                        tenant_id: row.tenant_id,
                        actor: row.actor.clone(),
                        action: row.action.clone(),
                        subject: row.subject.clone(),
                        detail: row.detail.clone(),
                    };
                    if row.prev_hash != prev_hash || chain_hash(&prev_hash, &rec) != row.hash {
                        return Ok(ChainCheck::BrokenAt { id: row.id });
                    }
                    prev_hash.clone_from(&row.hash);
                    events += 1;
                }
            }
            let head: String = audit_chain::table
                .find(1)
                .select(audit_chain::last_hash)
                .first(conn)?;
            if head != prev_hash {
                return Ok(ChainCheck::BrokenAt { id: after + 1 });
            }
            Ok(ChainCheck::Intact { events })
        })
        .await
    }
}
