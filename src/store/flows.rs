//! Device authorization flows (RFC 8628). Every state change is a conditional UPDATE on the
//! expected current state, so of two racing requests exactly one changes the row.

use diesel::prelude::*;

use super::batch::{Bind, Prepared, fixed_sql};
pub use super::kinds::FlowStatus;
use super::schema::device_flows;
use super::{StoreError, Tx};
use crate::ids::TenantId;

/// A stored flow.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_flows)]
pub struct FlowRecord {
    pub id: i64,
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub dpop_jkt: Option<String>,
    pub status: FlowStatus,
    pub interval_secs: i32,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_polled_at: Option<i64>,
    pub requested_ip: Option<String>,
    pub tenant_id: Option<TenantId>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// A flow to start.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = device_flows)]
pub struct NewFlow {
    pub device_code_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub dpop_jkt: Option<String>,
    pub status: FlowStatus,
    pub interval_secs: i32,
    pub created_at: i64,
    pub expires_at: i64,
    pub requested_ip: Option<String>,
}

/// Who decided a flow, for which tenant, when.
#[derive(Debug, Clone)]
pub struct Decision {
    pub tenant_id: Option<TenantId>,
    pub decided_by: String,
    pub decided_at: i64,
}

/// Marks every live (pending or approved) flow of a client superseded; returns how many.
pub fn supersede_live(tx: &mut Tx<'_>, client_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        device_flows::table
            .filter(device_flows::client_id.eq(client_id))
            .filter(device_flows::status.eq_any([FlowStatus::Pending, FlowStatus::Approved])),
    )
    .set(device_flows::status.eq(FlowStatus::Superseded))
    .execute(tx.conn)?)
}

/// Withdraws every approval of a client that its device has not collected yet (approved →
/// denied), so its next poll answers `access_denied`; returns how many. Conditional on the
/// state, like every transition: of this and a racing poll, exactly one takes the approval.
pub fn withdraw_approved(tx: &mut Tx<'_>, client_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        device_flows::table
            .filter(device_flows::client_id.eq(client_id))
            .filter(device_flows::status.eq(FlowStatus::Approved)),
    )
    .set(device_flows::status.eq(FlowStatus::Denied))
    .execute(tx.conn)?)
}

/// Inserts a flow inside a savepoint, so a user-code collision (`Conflict`) leaves the caller's
/// transaction usable for another attempt.
pub fn insert(tx: &mut Tx<'_>, flow: &NewFlow) -> Result<i64, StoreError> {
    tx.conn
        .transaction(|conn| {
            diesel::insert_into(device_flows::table)
                .values(flow)
                .returning(device_flows::id)
                .get_result(conn)
        })
        .map_err(StoreError::from)
}

pub fn find_by_device_code(tx: &mut Tx<'_>, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
    // Every poll runs this on the SQLite writer: a fixed statement, so that diesel does not
    // build the SQL text of a fifteen-column select again for each poll to find it in its cache.
    // The columns are FlowRecord's fields, in order.
    fixed_sql!(
        FlowByDeviceCode,
        "SELECT id, device_code_hash, user_code, client_id, scope, dpop_jkt, status, \
         interval_secs, created_at, expires_at, last_polled_at, requested_ip, tenant_id, \
         decided_by, decided_at FROM device_flows WHERE device_code_hash = ",
        "",
    );
    Ok(
        Prepared::<FlowByDeviceCode, device_flows::SqlType>::new(&[Bind::Text(hash)])
            .get_result::<FlowRecord>(tx.conn)
            .optional()?,
    )
}

/// The undecided flow holding a user code (normalised, without dash), if any.
pub fn find_pending_by_user_code(
    tx: &mut Tx<'_>,
    user_code: &str,
) -> Result<Option<FlowRecord>, StoreError> {
    Ok(device_flows::table
        .filter(device_flows::user_code.eq(user_code))
        .filter(device_flows::status.eq(FlowStatus::Pending))
        .select(FlowRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

pub fn find(tx: &mut Tx<'_>, id: i64) -> Result<Option<FlowRecord>, StoreError> {
    Ok(device_flows::table
        .find(id)
        .select(FlowRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Records a poll at `now` if the previous one was at least `min_gap_ms` earlier (or there was
/// none). Returns false when the poll came too soon; of two simultaneous polls one gets false.
pub fn record_poll(
    tx: &mut Tx<'_>,
    id: i64,
    now: i64,
    min_gap_ms: i64,
) -> Result<bool, StoreError> {
    // Every pending poll runs this: a statement prepared once per connection.
    fixed_sql!(
        RecordPoll,
        "UPDATE device_flows SET last_polled_at = ",
        " WHERE id = ",
        " AND (last_polled_at IS NULL OR last_polled_at <= ",
        ")",
    );
    let n = Prepared::<RecordPoll, ()>::new(&[
        Bind::Int(now),
        Bind::Int(id),
        Bind::Int(now - min_gap_ms),
    ])
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// RFC 8628 §3.5 slow_down: the interval grows by 5 seconds, for this and all later polls.
pub fn slow_down(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    diesel::update(device_flows::table.find(id))
        .set((
            device_flows::interval_secs.eq(device_flows::interval_secs + 5),
            device_flows::last_polled_at.eq(now),
        ))
        .execute(tx.conn)?;
    Ok(())
}

/// Moves a flow from `from` to `to` if it is still in `from`; returns whether it did.
pub fn transition(
    tx: &mut Tx<'_>,
    id: i64,
    from: FlowStatus,
    to: FlowStatus,
    decision: Option<&Decision>,
) -> Result<bool, StoreError> {
    let target = device_flows::table
        .find(id)
        .filter(device_flows::status.eq(from));
    let n = match decision {
        Some(d) => diesel::update(target)
            .set((
                device_flows::status.eq(to),
                device_flows::tenant_id.eq(d.tenant_id),
                device_flows::decided_by.eq(&d.decided_by),
                device_flows::decided_at.eq(d.decided_at),
            ))
            .execute(tx.conn)?,
        None => diesel::update(target)
            .set(device_flows::status.eq(to))
            .execute(tx.conn)?,
    };
    Ok(n == 1)
}

/// Deletes flows that expired before `before`; returns how many.
pub fn delete_expired(tx: &mut Tx<'_>, before: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(device_flows::table.filter(device_flows::expires_at.lt(before)))
            .execute(tx.conn)?,
    )
}
