//! Periodic housekeeping, run by every instance (each step is idempotent, so several instances
//! sweeping at once only repeat each other): forget jti values and rate-limit windows that can no
//! longer matter, delete flows and tokens long past their expiry, drop signing keys no token can
//! need, reload the key ring so rotations made elsewhere are seen, remove telemetry readings
//! older than `telemetry.retention_days` (on PostgreSQL by dropping daily partitions, which it
//! also creates ahead of the readings that need them), and forget old counters of refused OAuth
//! requests.

use std::time::Duration;

use crate::config::TelemetrySettings;
use crate::oauth::OAuth;
use crate::store::telemetry::{AcceptedTimes, Retired};
use crate::store::{
    Backend, Store, StoreError, flows, keys, refusals, replay, sessions, telemetry, tokens,
};

/// Expired device flows are kept this long for the pairing history, then deleted.
const FLOW_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// Sign-in failure counters untouched this long are forgotten (longer than any wait they impose).
const LOGIN_FAILURE_RETENTION_MS: i64 = 24 * 3_600_000;
/// Rate-limit windows are at most an hour long; older buckets are dead.
const RATE_WINDOW_RETENTION_MS: i64 = 2 * 3_600_000;
/// Counters of refused unauthenticated OAuth requests are kept this long for investigations
/// (rows per address and hour are bounded, see `store::refusals`).
const REFUSAL_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// SQLite: old readings are deleted this many per transaction, so uploads never wait long behind
/// a sweep (they share one writer)...
const TELEMETRY_DELETE_CHUNK: i64 = 10_000;
/// ...and at most this many chunks per sweep; the rest goes at the next one.
const TELEMETRY_MAX_CHUNKS: usize = 100;

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub replay_and_rate_rows: usize,
    pub flows: usize,
    pub tokens: usize,
    /// Ended portal sessions and old sign-in failure counters.
    pub sessions: usize,
    pub signing_keys: usize,
    /// Readings deleted (SQLite).
    pub telemetry_readings: usize,
    /// Daily partitions of readings dropped, with every reading in them (PostgreSQL).
    pub telemetry_partitions: usize,
    /// Per-window counters of refused unauthenticated OAuth requests.
    pub refusal_counters: usize,
}

/// One pass of housekeeping at `now_ms`.
pub async fn sweep(
    store: &Store,
    oauth: &OAuth,
    session_idle_ms: i64,
    now_ms: i64,
) -> Result<SweepReport, StoreError> {
    let retired = oauth.keys().retired_kids(now_ms);
    let mut report = store
        .write(move |tx| {
            Ok::<_, StoreError>(SweepReport {
                replay_and_rate_rows: replay::delete_expired(
                    tx,
                    now_ms,
                    now_ms - RATE_WINDOW_RETENTION_MS,
                )?,
                flows: flows::delete_expired(tx, now_ms - FLOW_RETENTION_MS)?,
                tokens: tokens::delete_expired(tx, now_ms)?,
                sessions: sessions::delete_expired(tx, now_ms, session_idle_ms)?
                    + sessions::delete_stale_failures(tx, now_ms - LOGIN_FAILURE_RETENTION_MS)?,
                signing_keys: 0,
                telemetry_readings: 0,
                telemetry_partitions: 0,
                refusal_counters: refusals::delete_before(tx, now_ms - REFUSAL_RETENTION_MS)?,
            })
        })
        .await?;
    report.signing_keys = retired.len();
    if !retired.is_empty() {
        store
            .write(move |tx| {
                for kid in &retired {
                    keys::delete(tx, kid)?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
    }
    let settings = &oauth.settings().telemetry;
    let created = prepare_telemetry(store, settings, now_ms).await?;
    if created > 0 {
        tracing::info!(created, "created daily partitions of telemetry readings");
    }
    let retention_ms = i64::from(settings.retention_days.get()) * 86_400_000;
    let retired = retire_old_readings(store, now_ms - retention_ms).await?;
    report.telemetry_readings = retired.readings;
    report.telemetry_partitions = retired.partitions;
    if let Err(e) = oauth.keys().reload().await {
        tracing::warn!(error = %e, "could not reload the signing key ring");
    }
    Ok(report)
}

/// Makes room for every reading the server accepts from now until a day ahead (on PostgreSQL:
/// the daily partitions), so that no upload waits for one to be created, even when sweeps
/// stall for a while; returns how many partitions it created. Run by each sweep and at start.
/// Not past the retention period: retention would drop those again at once (a reading that old
/// still finds its day created when it is inserted, and goes at the next sweep).
pub async fn prepare_telemetry(
    store: &Store,
    settings: &TelemetrySettings,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let max_age_ms = i64::from(settings.max_reading_age_secs.get()) * 1000;
    let retention_ms = i64::from(settings.retention_days.get()) * 86_400_000;
    let accepted = AcceptedTimes {
        oldest: now_ms - max_age_ms.min(retention_ms - 1),
        newest: now_ms + i64::from(settings.max_reading_future_secs) * 1000 + 86_400_000,
    };
    telemetry::prepare_days(store, accepted).await
}

/// Removes readings measured before `before`: SQLite a chunk per transaction, PostgreSQL the
/// daily partitions that ended by then.
async fn retire_old_readings(store: &Store, before: i64) -> Result<Retired, StoreError> {
    if store.backend() == Backend::Postgres {
        // Detaching a partition concurrently refuses to run inside a transaction.
        return store
            .autocommit(move |tx| telemetry::retire_older_than(tx, before, TELEMETRY_DELETE_CHUNK))
            .await;
    }
    let mut total = Retired::default();
    for _ in 0..TELEMETRY_MAX_CHUNKS {
        let step = store
            .write(move |tx| telemetry::retire_older_than(tx, before, TELEMETRY_DELETE_CHUNK))
            .await?;
        total.readings += step.readings;
        total.partitions += step.partitions;
        if !step.more {
            break;
        }
    }
    Ok(total)
}

/// Runs [`sweep`] every `every`, logging what it removed; stops when the runtime does.
pub async fn run(
    store: Store,
    oauth: std::sync::Arc<OAuth>,
    clock: crate::clock::SharedClock,
    session_idle_ms: i64,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(
            &store,
            &oauth,
            session_idle_ms,
            clock.now().timestamp_millis(),
        )
        .await
        {
            Ok(report) if report != SweepReport::default() => {
                tracing::info!(?report, "housekeeping")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
        }
    }
}
