//! The telemetry writer: one task per instance that commits many uploads in one transaction
//! (group commit) and answers each upload only after the transaction holding its rows committed,
//! so an acknowledged reading survives a crash of the process (SIGKILL) the moment it is
//! acknowledged. While batches commit (up to [`IN_FLIGHT`] at once), the uploads arriving queue
//! up and go together into the next, so batches grow with load and the per-upload cost of a
//! commit shrinks. Two batches in flight may hold the same reading id (a retry racing its
//! original): the database still stores it once (on PostgreSQL the later insert waits for the
//! earlier transaction on the unique index and then counts a duplicate; see
//! `store::telemetry::insert_readings`).
//!
//! Each transaction also settles what only the database can: the device's token generation,
//! tenant and status at commit time, and whether the access token itself was revoked (RFC 7009),
//! so that revocation takes effect at once, for two queries per batch rather than per upload;
//! and the proofs' `jti` values in the shared replay store.

use std::collections::HashSet;

use std::sync::Arc;

use metrics::Gauge;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::batch::{Limits, Reading};
use super::error::TelemetryError;
use crate::clock::SharedClock;
use crate::ids::{DeviceSerial, TenantId};
use crate::oauth::tokens::device_token_stands;
use crate::store::replay::{self, JtiEntry};
use crate::store::telemetry::{self as stored, AcceptedTimes, DeviceTokenState, NewReading};
use crate::store::tokens;
use crate::store::{Store, StoreError, Tx};
use crate::verifier::VerifyError;

/// What an acknowledged upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOutcome {
    /// Readings stored now.
    pub accepted: usize,
    /// Readings whose id this device had already uploaded (a retry): not stored again.
    pub duplicates: usize,
}

/// A verified upload waiting for the writer.
#[derive(Debug)]
pub struct PendingUpload {
    pub serial: DeviceSerial,
    pub tenant_id: TenantId,
    /// The token's `gen`.
    pub generation: i64,
    /// The token's `jti`, checked against the revoked access tokens.
    pub token_jti: String,
    pub replay_scope: String,
    pub jti: String,
    pub replay_until_ms: i64,
    pub readings: Vec<Reading>,
}

type Answer = Result<UploadOutcome, TelemetryError>;

struct Job {
    upload: PendingUpload,
    reply: oneshot::Sender<Answer>,
}

/// The handle uploads are submitted through.
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// Uploads queued and not yet taken into a batch (`pairgate_telemetry_queue_depth`).
    queued: Gauge,
}

impl Writer {
    /// Spawns the writer on the current tokio runtime. `limits` gives the measurement times
    /// still accepted, among which a reading's id is looked for.
    pub fn start(
        store: Store,
        clock: SharedClock,
        limits: &Limits,
        batch_rows: usize,
        queue: usize,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let queued = store.meters().telemetry_queue.clone();
        let window = Window {
            max_age_ms: limits.max_age_ms,
            max_future_ms: limits.max_future_ms,
        };
        tokio::spawn(run(store, clock, receiver, batch_rows.max(1), window));
        Self {
            queue: sender,
            queued,
        }
    }

    /// Queues an upload and waits until its rows are committed (or refused).
    pub async fn submit(&self, upload: PendingUpload) -> Answer {
        let (reply, answer) = oneshot::channel();
        // Counted before it is queued, so the writer's decrement never comes first.
        self.queued.increment(1.0);
        self.queue
            .try_send(Job { upload, reply })
            .inspect_err(|_| self.queued.decrement(1.0))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => TelemetryError::Busy,
                mpsc::error::TrySendError::Closed(_) => not_committed(),
            })?;
        answer.await.unwrap_or_else(|_| Err(not_committed()))
    }
}

/// The answer for uploads whose transaction failed: retryable (503), since ids make retries safe.
fn not_committed() -> TelemetryError {
    TelemetryError::Store(StoreError::Unavailable(
        "the telemetry batch was not committed".into(),
    ))
}

/// Batches committing at once. One batch commits while the next fills, so the database
/// writer always has the next one queued instead of waiting for this task to be scheduled
/// again; a few more than two lets the store's own group commit join batches that queued up.
const IN_FLIGHT: usize = 4;

/// How far back and ahead of now a reading's time is accepted.
#[derive(Debug, Clone, Copy)]
struct Window {
    max_age_ms: i64,
    max_future_ms: i64,
}

impl Window {
    fn at(self, now_ms: i64) -> AcceptedTimes {
        AcceptedTimes {
            oldest: now_ms.saturating_sub(self.max_age_ms),
            newest: now_ms.saturating_add(self.max_future_ms),
        }
    }
}

async fn run(
    store: Store,
    clock: SharedClock,
    mut queue: mpsc::Receiver<Job>,
    batch_rows: usize,
    window: Window,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let queued = store.meters().telemetry_queue.clone();
    loop {
        // A slot first, then the batch: under load, batches grow while the slots are busy.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut rows = first.upload.readings.len();
        let mut jobs = vec![first];
        while rows < batch_rows {
            match queue.try_recv() {
                Ok(job) => {
                    rows += job.upload.readings.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        queued.decrement(jobs.len() as f64);
        let store = store.clone();
        let received_at = clock.now().timestamp_millis();
        let accepted = window.at(received_at);
        tokio::spawn(async move {
            let _slot = slot;
            write_batch(&store, jobs, rows, received_at, accepted).await;
        });
    }
}

/// Commits one batch and answers its uploads.
async fn write_batch(
    store: &Store,
    jobs: Vec<Job>,
    rows: usize,
    received_at: i64,
    accepted: AcceptedTimes,
) {
    let (uploads, replies): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| (j.upload, j.reply)).unzip();
    let started = std::time::Instant::now();
    let committed = store
        .write(move |tx| commit(tx, &uploads, received_at, accepted))
        .await;
    tracing::debug!(
        uploads = replies.len(),
        rows,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "telemetry batch"
    );
    match committed {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                // The uploader may have gone away; its rows are committed all the same.
                let _ = reply.send(answer);
            }
        }
        Err(err) => {
            tracing::warn!(
                error = %err,
                uploads = replies.len(),
                rows,
                "telemetry batch not committed"
            );
            for reply in replies {
                let _ = reply.send(Err(not_committed()));
            }
        }
    }
}

/// One group commit: refuses uploads whose device state no longer matches their token or whose
/// proof was replayed, stores the others' readings, and counts accepted and duplicate readings.
fn commit(
    tx: &mut Tx<'_>,
    uploads: &[PendingUpload],
    received_at: i64,
    accepted: AcceptedTimes,
) -> Result<Vec<Answer>, StoreError> {
    let mut refused = refused_tokens(tx, uploads)?;
    refuse_replayed_proofs(tx, uploads, &mut refused)?;
    let outcomes = store_readings(tx, uploads, &refused, received_at, accepted)?;
    Ok(refused
        .into_iter()
        .zip(outcomes)
        .map(|(refusal, outcome)| refusal.map_or(Ok(outcome), Err))
        .collect())
}

/// For each upload, its refusal if its token no longer stands: the device's state at commit
/// time, or the access token revoked.
fn refused_tokens(
    tx: &mut Tx<'_>,
    uploads: &[PendingUpload],
) -> Result<Vec<Option<TelemetryError>>, StoreError> {
    let serials: Vec<&DeviceSerial> = uploads
        .iter()
        .map(|u| &u.serial)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let states = stored::device_token_states(tx, &serials)?;
    let jtis: Vec<&str> = uploads
        .iter()
        .map(|u| u.token_jti.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let revoked = tokens::revoked_access_tokens(tx, &jtis)?;
    Ok(uploads
        .iter()
        .map(|u| {
            if !token_still_valid(u, states.get(&u.serial)) {
                Some(TelemetryError::Auth(VerifyError::InvalidToken(
                    "the device's tokens have been revoked",
                )))
            } else if revoked.contains(&u.token_jti) {
                Some(TelemetryError::Auth(VerifyError::InvalidToken(
                    "the access token has been revoked",
                )))
            } else {
                None
            }
        })
        .collect())
}

/// Records the proofs' `jti` values of the uploads not refused yet, and refuses those whose
/// proof was used before.
fn refuse_replayed_proofs(
    tx: &mut Tx<'_>,
    uploads: &[PendingUpload],
    refused: &mut [Option<TelemetryError>],
) -> Result<(), StoreError> {
    let live: Vec<usize> = (0..uploads.len())
        .filter(|&i| refused[i].is_none())
        .collect();
    let entries: Vec<JtiEntry<'_>> = live
        .iter()
        .map(|&i| {
            let u = &uploads[i];
            (u.replay_scope.as_str(), u.jti.as_str(), u.replay_until_ms)
        })
        .collect();
    for (&i, fresh) in live.iter().zip(replay::remember_jtis(tx, &entries)?) {
        if !fresh {
            refused[i] = Some(TelemetryError::Auth(VerifyError::InvalidDpopProof(
                "the DPoP proof was used before",
            )));
        }
    }
    Ok(())
}

/// Inserts the readings of the uploads not refused, and counts per upload the readings stored
/// and those already there.
fn store_readings(
    tx: &mut Tx<'_>,
    uploads: &[PendingUpload],
    refused: &[Option<TelemetryError>],
    received_at: i64,
    accepted: AcceptedTimes,
) -> Result<Vec<UploadOutcome>, StoreError> {
    let mut rows = Vec::new();
    let mut owners = Vec::new();
    for (i, u) in uploads.iter().enumerate() {
        if refused[i].is_some() {
            continue;
        }
        for r in &u.readings {
            rows.push(NewReading {
                serial: &u.serial,
                reading_id: &r.id,
                tenant_id: u.tenant_id,
                ts: r.ts,
                received_at,
                metrics: &r.metrics,
            });
            owners.push(i);
        }
    }
    let inserted = stored::insert_readings(tx, &rows, accepted)?;
    let mut outcomes = vec![
        UploadOutcome {
            accepted: 0,
            duplicates: 0
        };
        uploads.len()
    ];
    for (&i, new) in owners.iter().zip(inserted) {
        if new {
            outcomes[i].accepted += 1;
        } else {
            outcomes[i].duplicates += 1;
        }
    }
    Ok(outcomes)
}

/// The token was issued in the device's current generation, for the tenant it still belongs to,
/// and the device's client is enabled.
fn token_still_valid(upload: &PendingUpload, state: Option<&DeviceTokenState>) -> bool {
    device_token_stands(state, Some(upload.tenant_id), Some(upload.generation))
}
