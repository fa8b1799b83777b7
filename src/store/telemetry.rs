//! Telemetry readings: batched inserts that turn a retried reading into a duplicate (the database
//! decides), the device state an upload is checked against, per-device time-range reads, and
//! retention. On PostgreSQL the table is partitioned by day (`partitions.rs`): inserts bind the
//! batch as arrays, and retention drops whole days.

use std::collections::HashMap;

use diesel::pg::Pg;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text};

use super::batch::{self, BatchRow, InsertIgnoring, ROWS_PER_STATEMENT};
use super::connection::MultiBackend;
use super::kinds::ActiveStatus;
use super::schema::{clients, devices, telemetry_readings};
use super::{Backend, DbConnection, Store, StoreError, Tx, partitions};
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

/// The measurement times the server still accepts (Unix ms, both ends included): from
/// `telemetry.max_reading_age_secs` before now to `telemetry.max_reading_future_secs` after. A
/// retry of a reading can arrive while its time is in here, so its id must still be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedTimes {
    pub oldest: i64,
    pub newest: i64,
}

/// Inserts readings, skipping those whose (serial, reading_id) is already stored. Returns, for
/// each row in order, whether it was inserted (a row repeated within `rows` is inserted once).
///
/// SQLite: the primary key (serial, reading_id) decides, for good. PostgreSQL: the key of the
/// partitioned table is (serial, reading_id, ts), so the insert also looks for the pair among the
/// readings of the `accepted` window, whatever their time (see `insert_unnested`).
pub fn insert_readings(
    tx: &mut Tx<'_>,
    rows: &[NewReading<'_>],
    accepted: AcceptedTimes,
) -> Result<Vec<bool>, StoreError> {
    let inserted = match tx.conn {
        DbConnection::Pg(conn) => insert_unnested(conn, rows, accepted)?,
        DbConnection::Sqlite(_) => insert_values(tx, rows)?,
    };
    Ok(batch::claim_inserted(
        rows.iter().map(|r| (r.serial.as_str(), r.reading_id)),
        inserted.iter().map(|(s, r)| (s.as_str(), r.as_str())),
    ))
}

/// SQLite: multi-row `INSERT … VALUES`, in chunks of the cached statement sizes; the
/// (serial, reading_id) pairs inserted.
fn insert_values(
    tx: &mut Tx<'_>,
    rows: &[NewReading<'_>],
) -> Result<Vec<(String, String)>, StoreError> {
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
    Ok(inserted)
}

/// PostgreSQL: the whole batch in one statement, its columns bound as arrays (`unnest`): one
/// prepared statement whatever the batch's size. A row is left out when its (serial,
/// reading_id) is stored with a time in the accepted window (the guard: an index probe per
/// partition the window covers, pruned by `ts`), or comes again later in the batch
/// (`DISTINCT ON`, the first kept); the primary key (serial, reading_id, ts) catches the rest,
/// among them the same retry committed meanwhile by another instance: that insert waits for
/// the other transaction and then does nothing.
///
/// A row whose day has no partition yet fails the statement: its savepoint is rolled back, the
/// missing days are created, and the statement runs once more.
fn insert_unnested(
    conn: &mut PgConnection,
    rows: &[NewReading<'_>],
    accepted: AcceptedTimes,
) -> Result<Vec<(String, String)>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let columns = Columns::of(rows);
    match conn.transaction(|conn| columns.insert(conn, accepted)) {
        Err(e) if partitions::is_missing_partition(&e) => {
            let mut days: Vec<i64> = rows.iter().map(|r| partitions::day_of(r.ts)).collect();
            days.sort_unstable();
            days.dedup();
            partitions::create_days(conn, &days)?;
            Ok(columns.insert(conn, accepted)?)
        }
        result => Ok(result?),
    }
}

/// A batch of readings as one array per column.
struct Columns<'a> {
    serials: Vec<&'a str>,
    reading_ids: Vec<&'a str>,
    tenant_ids: Vec<i64>,
    ts: Vec<i64>,
    received_at: Vec<i64>,
    metrics: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(rows: &[NewReading<'a>]) -> Self {
        Self {
            serials: rows.iter().map(|r| r.serial.as_str()).collect(),
            reading_ids: rows.iter().map(|r| r.reading_id).collect(),
            tenant_ids: rows.iter().map(|r| r.tenant_id.0).collect(),
            ts: rows.iter().map(|r| r.ts).collect(),
            received_at: rows.iter().map(|r| r.received_at).collect(),
            metrics: rows.iter().map(|r| r.metrics).collect(),
        }
    }

    fn insert(
        &self,
        conn: &mut PgConnection,
        accepted: AcceptedTimes,
    ) -> QueryResult<Vec<(String, String)>> {
        UnnestInsert {
            columns: self,
            accepted,
        }
        .load(conn)
    }
}

/// The batch insert as a statement diesel prepares once per connection and reuses (its text
/// never changes: the batch is in the arrays). `sql_query` would have PostgreSQL parse and plan
/// it on every batch, and planning an insert into a partitioned table with a look-up across
/// partitions costs more than running it.
struct UnnestInsert<'a> {
    columns: &'a Columns<'a>,
    accepted: AcceptedTimes,
}

/// [`UnnestInsert`]'s identity in the prepared-statement cache.
struct UnnestInsertId;

impl QueryId for UnnestInsert<'_> {
    type QueryId = UnnestInsertId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UnnestInsert<'_> {
    type SqlType = (Text, Text);
}

impl RunQueryDsl<PgConnection> for UnnestInsert<'_> {}

impl QueryFragment<Pg> for UnnestInsert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let c = self.columns;
        out.push_sql(
            "INSERT INTO telemetry_readings \
               (serial, reading_id, tenant_id, ts, received_at, metrics) \
             SELECT DISTINCT ON (r.serial, r.reading_id) \
               r.serial, r.reading_id, r.tenant_id, r.ts, r.received_at, r.metrics \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&c.serials)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&c.reading_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&c.tenant_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&c.ts)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&c.received_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&c.metrics)?;
        out.push_sql(
            ") WITH ORDINALITY \
               AS r(serial, reading_id, tenant_id, ts, received_at, metrics, n) \
             LEFT JOIN LATERAL (SELECT 1 AS hit FROM telemetry_readings t \
               WHERE t.serial = r.serial AND t.reading_id = r.reading_id \
                 AND t.ts >= ",
        );
        out.push_bind_param::<BigInt, _>(&self.accepted.oldest)?;
        out.push_sql(" AND t.ts <= ");
        out.push_bind_param::<BigInt, _>(&self.accepted.newest)?;
        // `LATERAL … LIMIT 1`, not `NOT EXISTS`: an anti-join lets the planner read every reading
        // of the window and merge (it does, when a young partition's statistics say it is
        // small); this form is a primary-key probe per reading and partition, whatever the
        // statistics say.
        out.push_sql(
            " LIMIT 1) seen ON true WHERE seen.hit IS NULL \
             ORDER BY r.serial, r.reading_id, r.n \
             ON CONFLICT DO NOTHING \
             RETURNING serial, reading_id",
        );
        Ok(())
    }
}

/// What an upload's token is checked against, read at commit time.
pub use super::tokens::DeviceTokenState;

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

/// What one step of retention removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// SQLite: readings deleted.
    pub readings: usize,
    /// PostgreSQL: daily partitions dropped, with every reading in them.
    pub partitions: usize,
    /// Readings to remove may be left for another step.
    pub more: bool,
}

/// Removes readings measured before `before`. PostgreSQL drops the daily partitions that ended
/// by then, all in one step; a reading of the day `before` falls in stays until its whole day
/// is past, outside a transaction ([`Store::autocommit`]). SQLite deletes about `chunk` of the
/// oldest readings, in a write, and says whether there may be more.
pub fn retire_older_than(tx: &mut Tx<'_>, before: i64, chunk: i64) -> Result<Retired, StoreError> {
    match tx.conn {
        DbConnection::Pg(conn) => Ok(Retired {
            partitions: partitions::drop_before(conn, before)?,
            ..Retired::default()
        }),
        DbConnection::Sqlite(_) => {
            let readings = delete_older_than(tx, before, chunk)?;
            Ok(Retired {
                readings,
                partitions: 0,
                more: readings as i64 >= chunk,
            })
        }
    }
}

/// Makes sure readings measured in `accepted` have somewhere to go: PostgreSQL creates the
/// daily partitions of the days it touches that are missing, in one transaction, and returns
/// how many it created. Nothing to do (and no write) on SQLite.
pub async fn prepare_days(store: &Store, accepted: AcceptedTimes) -> Result<usize, StoreError> {
    if store.backend() == Backend::Sqlite {
        return Ok(0);
    }
    let days = partitions::days_between(accepted.oldest, accepted.newest);
    store
        .write(move |tx| match tx.conn {
            DbConnection::Pg(conn) => Ok(partitions::create_days(conn, &days)?),
            DbConnection::Sqlite(_) => Ok(0),
        })
        .await
}

/// Deletes about `chunk` of the oldest readings measured before `before` (a few more when
/// several share the edge's timestamp); returns how many. Small chunks keep each transaction,
/// and on SQLite the writer lock, short.
fn delete_older_than(tx: &mut Tx<'_>, before: i64, chunk: i64) -> Result<usize, StoreError> {
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
