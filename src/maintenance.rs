//! Periodic housekeeping, run by every instance (each step is idempotent, so several instances
//! sweeping at once only repeat each other): forget jti values and rate-limit windows that can no
//! longer matter, delete flows and tokens long past their expiry, drop signing keys no token can
//! need, and reload the key ring so rotations made elsewhere are seen.

use std::time::Duration;

use crate::oauth::OAuth;
use crate::store::{Store, StoreError, flows, keys, replay, sessions, tokens};

/// Expired device flows are kept this long for the pairing history, then deleted.
const FLOW_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// Sign-in failure counters untouched this long are forgotten (longer than any wait they impose).
const LOGIN_FAILURE_RETENTION_MS: i64 = 24 * 3_600_000;
/// Rate-limit windows are at most an hour long; older buckets are dead.
const RATE_WINDOW_RETENTION_MS: i64 = 2 * 3_600_000;

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub replay_and_rate_rows: usize,
    pub flows: usize,
    pub tokens: usize,
    /// Ended portal sessions and old sign-in failure counters.
    pub sessions: usize,
    pub signing_keys: usize,
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
    if let Err(e) = oauth.keys().reload().await {
        tracing::warn!(error = %e, "could not reload the signing key ring");
    }
    Ok(report)
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
