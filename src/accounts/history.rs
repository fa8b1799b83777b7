//! The audit log as a person reads it: a filtered page of events, each read back into its
//! action, its actor and subject and its detail, with the names behind their ids (fetched once
//! per page). A member of a company sees names from their own company and the manufacturer's
//! staff only; another company stays unnamed.

use serde_json::Value;

use super::{AccountError, Accounts, Role, Session};
use crate::events::{Action, Party};
use crate::ids::{GroupId, TenantId};
use crate::store::audit::AuditRecord;
use crate::store::history::{self, AuditFilter, Names, Wanted};
use crate::store::{StoreError, Tx};

/// One event, read back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub occurred_at: i64,
    /// `None` for a name this build no longer knows.
    pub action: Option<Action>,
    pub action_name: String,
    pub actor: Party,
    pub subject: Party,
    /// The detail object (`Value::Null` if it was not JSON).
    pub detail: Value,
}

/// A page of events and the names they mention.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub entries: Vec<Entry>,
    pub names: Names,
}

impl Entry {
    fn read(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            occurred_at: record.occurred_at,
            action: Action::parse(&record.action),
            actor: Party::parse(&record.actor),
            subject: Party::parse(&record.subject),
            detail: serde_json::from_str(&record.detail).unwrap_or(Value::Null),
            action_name: record.action,
        }
    }
}

fn want(wanted: &mut Wanted, party: &Party) {
    match party {
        Party::User(id) => wanted.users.push(*id),
        Party::Tenant(id) => wanted.tenants.push(*id),
        Party::Group(id) => wanted.groups.push(*id),
        Party::Client(id) => wanted.clients.push(id.clone()),
        _ => {}
    }
}

/// Reads `records` back and fetches their names, inside the caller's transaction; `viewer`:
/// the company of the person reading (`None`: the manufacturer's staff, who see every name).
pub fn read_back(
    tx: &mut Tx<'_>,
    records: Vec<AuditRecord>,
    viewer: Option<TenantId>,
) -> Result<History, StoreError> {
    let entries: Vec<Entry> = records.into_iter().map(Entry::read).collect();
    let mut wanted = Wanted::default();
    for e in &entries {
        want(&mut wanted, &e.actor);
        want(&mut wanted, &e.subject);
        let id = |key: &str| e.detail.get(key).and_then(Value::as_i64);
        wanted.groups.extend(id("group").map(GroupId));
        wanted.tenants.extend(id("claimant_tenant").map(TenantId));
        if let Some(granter) = e.detail.get("granted_by").and_then(Value::as_str) {
            want(&mut wanted, &Party::parse(granter));
        }
        if e.action == Some(Action::DisputeResolved) {
            wanted.disputes.extend(id("dispute"));
        }
        if let Some(groups) = e.detail.get("groups").and_then(Value::as_array) {
            wanted
                .groups
                .extend(groups.iter().filter_map(Value::as_i64).map(GroupId));
        }
    }
    fn once<T: Ord>(list: &mut Vec<T>) {
        list.sort_unstable();
        list.dedup();
    }
    once(&mut wanted.users);
    once(&mut wanted.groups);
    once(&mut wanted.tenants);
    once(&mut wanted.disputes);
    once(&mut wanted.clients);
    let mut names = history::names(tx, &wanted)?;
    if let Some(tenant) = viewer {
        names
            .users
            .retain(|_, p| p.tenant_id == Some(tenant) || p.role == Role::Staff.as_str());
        names.groups.retain(|_, (t, _)| *t == tenant);
        names.tenants.retain(|id, _| *id == tenant);
    }
    Ok(History { entries, names })
}

impl Accounts {
    /// A page of the tenant's events (owners, admins) or everyone's (staff), newest first;
    /// the filter's tenant is the session's, whatever it said.
    pub async fn audit_history(
        &self,
        session: &Session,
        mut filter: AuditFilter,
        limit: i64,
    ) -> Result<History, AccountError> {
        if !session.user.role.reads_audit() {
            return Err(AccountError::Forbidden);
        }
        let viewer = match session.user.role {
            Role::Staff => None,
            _ => Some(session.user.tenant_id.ok_or(AccountError::Forbidden)?),
        };
        filter.tenant_id = viewer;
        Ok(self
            .store
            .read(move |tx| {
                let records = history::page(tx, &filter, limit)?;
                read_back(tx, records, viewer)
            })
            .await?)
    }
}
