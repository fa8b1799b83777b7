//! Reading the audit log as people do: one page of events chosen by tenant, person, action,
//! device and time (filtered and paged in SQL), and the names behind the ids of a page, read in
//! one query per kind of name (people, groups, companies, clients, staff notes), however many
//! rows it has.

use std::collections::HashMap;

use diesel::prelude::*;

use super::audit::AuditRecord;
use super::schema::{audit_events, clients, device_groups, disputes, tenants, users};
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, GroupId, TenantId, UserId};

/// Which events a page shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub tenant_id: Option<TenantId>,
    /// Events by or about this user.
    pub user_id: Option<UserId>,
    /// The action's log name (`pairing.approved`).
    pub action: Option<String>,
    /// Events about this device.
    pub serial: Option<DeviceSerial>,
    /// From this time on (Unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Older than this event (the next page).
    pub before_id: Option<i64>,
}

/// The newest `limit` events that `filter` selects, newest first.
pub fn page(
    tx: &mut Tx<'_>,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut query = audit_events::table
        .select(AuditRecord::as_select())
        .order(audit_events::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(tenant) = filter.tenant_id {
        query = query.filter(audit_events::tenant_id.eq(tenant));
    }
    if let Some(user) = filter.user_id {
        let party = format!("user:{user}");
        query = query.filter(
            audit_events::actor
                .eq(party.clone())
                .or(audit_events::subject.eq(party)),
        );
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(serial) = &filter.serial {
        query = query.filter(audit_events::subject.eq(format!("device:{serial}")));
    }
    if let Some(from) = filter.from_ms {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(until) = filter.until_ms {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(audit_events::id.lt(before));
    }
    Ok(query.load(tx.conn)?)
}

/// A person as a page names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub name: String,
    pub tenant_id: Option<TenantId>,
    pub role: String,
}

/// The names behind ids; an id missing here no longer exists.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub users: HashMap<UserId, PersonName>,
    pub groups: HashMap<GroupId, (TenantId, String)>,
    pub tenants: HashMap<TenantId, String>,
    pub clients: HashMap<String, String>,
    /// Staff notes of settled disputes, by dispute id.
    pub notes: HashMap<i64, String>,
}

/// The ids whose names a page needs.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub users: Vec<UserId>,
    pub groups: Vec<GroupId>,
    pub tenants: Vec<TenantId>,
    pub clients: Vec<String>,
    /// Disputes whose staff notes the page shows.
    pub disputes: Vec<i64>,
}

/// The names of `wanted`: at most one query per kind, none for a kind with no ids.
pub fn names(tx: &mut Tx<'_>, wanted: &Wanted) -> Result<Names, StoreError> {
    let mut names = Names::default();
    if !wanted.users.is_empty() {
        let rows: Vec<(UserId, String, Option<TenantId>, String)> = users::table
            .filter(users::id.eq_any(&wanted.users))
            .select((users::id, users::name, users::tenant_id, users::role))
            .load(tx.conn)?;
        for (id, name, tenant_id, role) in rows {
            let person = PersonName {
                name,
                tenant_id,
                role,
            };
            names.users.insert(id, person);
        }
    }
    if !wanted.groups.is_empty() {
        let rows: Vec<(GroupId, TenantId, String)> = device_groups::table
            .filter(device_groups::id.eq_any(&wanted.groups))
            .select((
                device_groups::id,
                device_groups::tenant_id,
                device_groups::name,
            ))
            .load(tx.conn)?;
        names.groups = rows.into_iter().map(|(id, t, n)| (id, (t, n))).collect();
    }
    if !wanted.tenants.is_empty() {
        let rows: Vec<(TenantId, String)> = tenants::table
            .filter(tenants::id.eq_any(&wanted.tenants))
            .select((tenants::id, tenants::name))
            .load(tx.conn)?;
        names.tenants = rows.into_iter().collect();
    }
    if !wanted.clients.is_empty() {
        let rows: Vec<(String, String)> = clients::table
            .filter(clients::client_id.eq_any(&wanted.clients))
            .select((clients::client_id, clients::name))
            .load(tx.conn)?;
        names.clients = rows.into_iter().collect();
    }
    if !wanted.disputes.is_empty() {
        let rows: Vec<(i64, Option<String>)> = disputes::table
            .filter(disputes::id.eq_any(&wanted.disputes))
            .select((disputes::id, disputes::note))
            .load(tx.conn)?;
        names.notes = (rows.into_iter())
            .filter_map(|(id, note)| Some((id, note?)))
            .collect();
    }
    Ok(names)
}
