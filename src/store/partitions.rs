//! PostgreSQL's daily partitions of `telemetry_readings` (migration `telemetry_partitions`): one
//! table per UTC day of measurement time, `telemetry_partitions.readings_YYYYMMDD`, created ahead
//! of the readings that need them and dropped whole when retention is past them. SQLite keeps one
//! table; nothing here runs on it.

use diesel::pg::PgConnection;
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

/// One partition's span: a UTC day, in Unix ms.
pub const DAY_MS: i64 = 86_400_000;

/// The start of the UTC day holding `ts` (Unix ms, before 1970 too).
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_MS) * DAY_MS
}

/// The start of every UTC day that `from..=to` touches.
pub fn days_between(from: i64, to: i64) -> Vec<i64> {
    let mut days = Vec::new();
    let mut day = day_of(from);
    while day <= to {
        days.push(day);
        day += DAY_MS;
    }
    days
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Creates the partitions of the days starting at `days` (Unix ms) that do not exist yet;
/// returns how many it created. Creating locks the parent against other schema changes only,
/// until the transaction ends (see the migration's `telemetry_partitions.create_day`).
pub fn create_days(conn: &mut PgConnection, days: &[i64]) -> QueryResult<usize> {
    if days.is_empty() {
        return Ok(0);
    }
    let created: Count = diesel::sql_query(
        "SELECT COUNT(*) FILTER (WHERE created) AS n FROM (\
           SELECT telemetry_partitions.create_day(day) AS created \
           FROM unnest($1::bigint[]) AS day ORDER BY day) AS days",
    )
    .bind::<Array<BigInt>, _>(days)
    .get_result(conn)?;
    Ok(created.n as usize)
}

/// Whether a failed insert found no partition for one of its rows' time.
pub fn is_missing_partition(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(_, info)
            if info.message().starts_with("no partition of relation")
    )
}

#[derive(QueryableByName)]
struct DayTable {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    day_start: i64,
    /// Still a partition of `telemetry_readings` (else left detached by an interrupted drop).
    #[diesel(sql_type = Bool)]
    attached: bool,
    /// A concurrent detach began and was interrupted: it must be finished (`FINALIZE`).
    #[diesel(sql_type = Bool)]
    detach_pending: bool,
}

/// The daily tables in schema `telemetry_partitions`, by day, oldest first: the partitions of
/// `telemetry_readings`, and any that an interrupted drop left detached or half detached.
fn day_tables(conn: &mut PgConnection) -> QueryResult<Vec<DayTable>> {
    diesel::sql_query(
        "SELECT c.relname::text AS name, \
           (EXTRACT(EPOCH FROM to_date(substring(c.relname FROM 10), 'YYYYMMDD')) * 1000)::bigint \
             AS day_start, \
           i.inhrelid IS NOT NULL AS attached, \
           COALESCE(i.inhdetachpending, false) AS detach_pending \
         FROM pg_class c \
         JOIN pg_namespace s ON s.oid = c.relnamespace \
         LEFT JOIN pg_inherits i ON i.inhrelid = c.oid \
           AND i.inhparent = 'public.telemetry_readings'::regclass \
         WHERE s.nspname = 'telemetry_partitions' AND c.relkind = 'r' \
           AND c.relname ~ '^readings_[0-9]{8}$' \
         ORDER BY day_start",
    )
    .load(conn)
}

/// Drops the partitions of the days that ended at or before `before` (Unix ms): every reading
/// in them was measured before it. Returns how many it dropped. Runs outside a transaction
/// (`Store::autocommit`).
///
/// Each day is first detached `CONCURRENTLY`, which never holds a lock that stops an upload,
/// and waits for the transactions that might still read the day; only then is the detached
/// table dropped, which locks nothing else. A lock that cannot be had within a few seconds (a
/// long read holding the day) fails the sweep, which carries on at its next round: a detach
/// left pending is finished (`FINALIZE`), a detached table dropped.
pub fn drop_before(conn: &mut PgConnection, before: i64) -> QueryResult<usize> {
    let old: Vec<DayTable> = day_tables(conn)?
        .into_iter()
        .filter(|t| t.day_start.saturating_add(DAY_MS) <= before)
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    diesel::sql_query("SET lock_timeout = '5s'").execute(conn)?;
    let dropped = old.iter().try_for_each(|t| {
        // The name matched ^readings_[0-9]{8}$ above: nothing to quote.
        if t.attached {
            let how = if t.detach_pending {
                "FINALIZE"
            } else {
                "CONCURRENTLY"
            };
            diesel::sql_query(format!(
                "ALTER TABLE public.telemetry_readings \
                 DETACH PARTITION telemetry_partitions.{} {how}",
                t.name
            ))
            .execute(conn)?;
        }
        diesel::sql_query(format!("DROP TABLE telemetry_partitions.{}", t.name)).execute(conn)?;
        Ok(())
    });
    // The pooled connection goes back to others with the server's default.
    diesel::sql_query("RESET lock_timeout").execute(conn)?;
    dropped.map(|()| old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_days_before_1970_too() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(-1), -DAY_MS);
        assert_eq!(days_between(DAY_MS - 1, DAY_MS), [0, DAY_MS]);
        assert_eq!(days_between(5, 6), [0]);
    }
}
