//! Telemetry readings: batched inserts that turn a retried reading into a duplicate (the primary
//! key decides), the device state an upload is checked against, per-device time-range reads, and
//! retention.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};

use super::batch::{self, BatchRow, InsertIgnoring, ROWS_PER_STATEMENT};
use super::connection::MultiBackend;
use super::kinds::ActiveStatus;
use super::schema::{clients, devices, telemetry_readings};
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, TenantId};

/// A reading to store, borrowed from the upload it came in.
#[derive(Debug, Clone, Copy)]
pub struct NewReading<'a> {
    pub serial: &'a DeviceSerial,
    pub reading_id: &'a str,
    pub tenant_id: TenantId,
    pub ts: i64,
    pub received_at: i64,
    /// A JSON object: metric name → number.
    pub metrics: &'a str,
}

impl BatchRow for NewReading<'_> {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        batch::bind::<Text, str>(out, self.serial.as_str())?;
        out.push_sql(", ");
        batch::bind::<Text, str>(out, self.reading_id)?;
        out.push_sql(", ");
        batch::bind::<BigInt, TenantId>(out, &self.tenant_id)?;
        out.push_sql(", ");
        batch::bind::<BigInt, i64>(out, &self.ts)?;
        out.push_sql(", ");
        batch::bind::<BigInt, i64>(out, &self.received_at)?;
        out.push_sql(", ");
        batch::bind::<Text, str>(out, self.metrics)
    }
}

/// Inserts readings, skipping those whose (serial, reading_id) is already stored. Returns, for
/// each row in order, whether it was inserted (a row repeated within `rows` is inserted once).
pub fn insert_readings(tx: &mut Tx<'_>, rows: &[NewReading<'_>]) -> Result<Vec<bool>, StoreError> {
    let mut inserted: Vec<(String, String)> = Vec::with_capacity(rows.len());
    for chunk in batch::chunks(rows) {
        inserted.extend(
            InsertIgnoring::<_, (Text, Text)>::new(
                "INSERT INTO telemetry_readings \
                 (serial, reading_id, tenant_id, ts, received_at, metrics) VALUES ",
                " ON CONFLICT DO NOTHING RETURNING serial, reading_id",
                chunk,
            )
            .load::<(String, String)>(tx.conn)?,
        );
    }
    Ok(batch::claim_inserted(
        rows.iter().map(|r| (r.serial.as_str(), r.reading_id)),
        inserted.iter().map(|(s, r)| (s.as_str(), r.as_str())),
    ))
}

/// What an upload's token is checked against, read at commit time.
pub use super::registry::DeviceTokenState;

/// The token state of each named device that exists (one query per few hundred devices).
pub fn device_token_states(
    tx: &mut Tx<'_>,
    serials: &[&DeviceSerial],
) -> Result<HashMap<DeviceSerial, DeviceTokenState>, StoreError> {
    let mut states = HashMap::with_capacity(serials.len());
    for chunk in serials.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<(DeviceSerial, Option<TenantId>, i64, ActiveStatus)> = devices::table
            .inner_join(clients::table)
            .filter(devices::serial.eq_any(chunk))
            .select((
                devices::serial,
                devices::tenant_id,
                devices::token_generation,
                clients::status,
            ))
            .load(tx.conn)?;
        for (serial, tenant_id, token_generation, status) in rows {
            states.insert(
                serial,
                DeviceTokenState {
                    tenant_id,
                    token_generation,
                    active: status == ActiveStatus::Active,
                },
            );
        }
    }
    Ok(states)
}

/// A stored reading.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = telemetry_readings)]
pub struct ReadingRecord {
    pub reading_id: String,
    pub ts: i64,
    pub metrics: String,
}

/// Which readings of one device, uploaded while it belonged to one tenant.
#[derive(Debug, Clone)]
pub struct RangeQuery<'a> {
    pub serial: &'a DeviceSerial,
    pub tenant_id: TenantId,
    /// Inclusive, Unix ms.
    pub from: i64,
    /// Exclusive, Unix ms.
    pub to: i64,
    pub limit: i64,
    pub newest_first: bool,
}

/// Readings in a time range, by measurement time (the `(serial, ts)` index).
pub fn readings(tx: &mut Tx<'_>, q: &RangeQuery<'_>) -> Result<Vec<ReadingRecord>, StoreError> {
    let query = telemetry_readings::table
        .filter(telemetry_readings::serial.eq(q.serial))
        .filter(telemetry_readings::ts.ge(q.from))
        .filter(telemetry_readings::ts.lt(q.to))
        .filter(telemetry_readings::tenant_id.eq(q.tenant_id))
        .select(ReadingRecord::as_select())
        .limit(q.limit);
    Ok(if q.newest_first {
        query
            .order((
                telemetry_readings::ts.desc(),
                telemetry_readings::reading_id.desc(),
            ))
            .load(tx.conn)?
    } else {
        query
            .order((
                telemetry_readings::ts.asc(),
                telemetry_readings::reading_id.asc(),
            ))
            .load(tx.conn)?
    })
}

/// Deletes about `chunk` of the oldest readings measured before `before` (a few more when
/// several share the edge's timestamp); returns how many. Small chunks keep each transaction,
/// and on SQLite the writer lock, short.
pub fn delete_older_than(tx: &mut Tx<'_>, before: i64, chunk: i64) -> Result<usize, StoreError> {
    let edge: Option<i64> = telemetry_readings::table
        .filter(telemetry_readings::ts.lt(before))
        .select(telemetry_readings::ts)
        .order(telemetry_readings::ts.asc())
        .offset(chunk.max(1) - 1)
        .limit(1)
        .first(tx.conn)
        .optional()?;
    let upto = edge.map_or(before, |ts| ts.saturating_add(1).min(before));
    Ok(
        diesel::delete(telemetry_readings::table.filter(telemetry_readings::ts.lt(upto)))
            .execute(tx.conn)?,
    )
}

/// How many readings a device has stored (for tests and the durability check).
pub fn count_for_device(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<i64, StoreError> {
    Ok(telemetry_readings::table
        .filter(telemetry_readings::serial.eq(serial))
        .count()
        .get_result(tx.conn)?)
}
