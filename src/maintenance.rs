//! Periodic housekeeping, run by every instance (each step is idempotent, so several instances
//! sweeping at once only repeat each other): forget jti values and rate-limit windows that can no
//! longer matter, delete flows and tokens long past their expiry, drop signing keys no token can
//! need, reload the key ring so rotations made elsewhere are seen, delete telemetry readings
//! older than `telemetry.retention_days`, and forget old counters of refused OAuth requests.

use std::time::Duration;

use crate::oauth::OAuth;
use crate::store::{Store, StoreError, flows, keys, refusals, replay, sessions, telemetry, tokens};

/// Expired device flows are kept this long for the pairing history, then deleted.
const FLOW_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// Sign-in failure counters untouched this long are forgotten (longer than any wait they impose).
const LOGIN_FAILURE_RETENTION_MS: i64 = 24 * 3_600_000;
/// Rate-limit windows are at most an hour long; older buckets are dead.
const RATE_WINDOW_RETENTION_MS: i64 = 2 * 3_600_000;
/// Counters of refused unauthenticated OAuth requests are kept this long for investigations
/// (rows per address and hour are bounded, see `store::refusals`).
const REFUSAL_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// Old readings are deleted this many per transaction, so uploads never wait long behind a sweep
/// (on SQLite they share one writer)...
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
    pub telemetry_readings: usize,
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
    let retention_ms = i64::from(oauth.settings().telemetry.retention_days.get()) * 86_400_000;
    report.telemetry_readings = delete_old_readings(store, now_ms - retention_ms).await?;
    if let Err(e) = oauth.keys().reload().await {
        tracing::warn!(error = %e, "could not reload the signing key ring");
    }
    Ok(report)
}

/// Deletes readings measured before `before`, a chunk per transaction.
async fn delete_old_readings(store: &Store, before: i64) -> Result<usize, StoreError> {
    let mut total = 0;
    for _ in 0..TELEMETRY_MAX_CHUNKS {
        let n = store
            .write(move |tx| telemetry::delete_older_than(tx, before, TELEMETRY_DELETE_CHUNK))
            .await?;
        total += n;
        if (n as i64) < TELEMETRY_DELETE_CHUNK {
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
