//! Many simulated devices at once: the load generator for the telemetry benchmark. Every device
//! is a [`Firmware`] with its own factory key and tokens, uploading over HTTP with a fresh DPoP
//! proof per request, exactly as one device would; the fleet only shares the HTTP client.
//!
//! The schedule is open-loop: `rate` uploads per second are spread over `tasks` schedulers, each
//! owning some devices and sending at fixed instants; latency is measured from the instant an
//! upload was due, so a slow server shows up as latency instead of silently lowering the load
//! (no coordinated omission). `rate` 0 means closed-loop: `tasks` uploads always in flight.
//!
//! Setting a fleet up needs what an operator does for real devices: register each device's key
//! and approve its pairing. [`bootstrap`] does both through pairgate's own domain code (what
//! `pairgate device register` and `pairgate device approve` run), in-process against the
//! server's database; the pairing itself goes over HTTP like any device's (device
//! authorization, then a poll).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::client::{DeviceClient, Endpoints, TokenSet};
use super::firmware::{Firmware, FirmwareOptions, SyncError, Synced};
use super::{DeviceKey, pkcs8_from_pem};
use crate::clock::{SharedClock, SystemClock};

mod setup;

pub use setup::{Bootstrap, bootstrap};

/// A fleet device as kept between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetDevice {
    pub serial: String,
    /// The factory key, PKCS#8 PEM.
    pub key_pem: String,
    pub tokens: TokenSet,
}

/// How to run the fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Uploads per second over the whole fleet; 0 for closed loop.
    pub rate: f64,
    /// Schedulers (open loop) or uploads in flight (closed loop).
    pub tasks: usize,
    pub duration: Duration,
    /// Not counted in the results.
    pub warmup: Duration,
    /// Readings measured before each upload (the batch size).
    pub readings: usize,
    /// Where to append `serial id` for every acknowledged reading.
    pub ack_log: Option<PathBuf>,
    /// Seconds between progress lines.
    pub progress_every: Duration,
}

/// Latencies and outcomes.
#[derive(Debug, Default)]
struct Tally {
    /// Microseconds from the scheduled instant to the answer, per sync.
    latencies: Vec<u32>,
    uploads: u64,
    accepted: u64,
    duplicates: u64,
    failures: BTreeMap<String, u64>,
}

impl Tally {
    /// Moves `other`'s counts into this tally (leaving `other` empty).
    fn merge(&mut self, other: &mut Tally) {
        let other = std::mem::take(other);
        self.latencies.extend(other.latencies);
        self.uploads += other.uploads;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
    }

    /// Counts one measured sync: its latency, what it got through, and its failure.
    fn count(&mut self, latency: Duration, synced: Option<Synced>, failure: Option<String>) {
        self.latencies
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        if let Some(s) = synced {
            self.uploads += s.uploads;
            self.accepted += s.accepted;
            self.duplicates += s.duplicates;
        }
        if let Some(f) = failure {
            *self.failures.entry(f).or_default() += 1;
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct FleetReport {
    pub devices: usize,
    pub measured: Duration,
    pub uploads: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub failures: BTreeMap<String, u64>,
    /// Sorted latencies in microseconds.
    latencies: Vec<u32>,
}

impl FleetReport {
    /// The report of `devices` measured for `measured`, from their tally.
    fn new(devices: usize, measured: Duration, mut tally: Tally) -> Self {
        tally.latencies.sort_unstable();
        Self {
            devices,
            measured,
            uploads: tally.uploads,
            accepted: tally.accepted,
            duplicates: tally.duplicates,
            failures: tally.failures,
            latencies: tally.latencies,
        }
    }

    pub fn uploads_per_sec(&self) -> f64 {
        self.uploads as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in milliseconds (`p` in 0..=1).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} devices, {:.1} s measured: {} uploads acknowledged ({:.0}/s), readings accepted {} \
             duplicates {}; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, \
             max {:.2} ms; failures {:?}",
            self.devices,
            self.measured.as_secs_f64(),
            self.uploads,
            self.uploads_per_sec(),
            self.accepted,
            self.duplicates,
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.percentile_ms(1.0),
            self.failures,
        )
    }
}

fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p) as usize).min(sorted_us.len() - 1);
    f64::from(sorted_us[i]) / 1000.0
}

/// Runs the fleet against the server; returns the report and the devices with their current
/// tokens (refreshed ones included).
pub async fn run(
    http: &reqwest::Client,
    endpoints: Arc<Endpoints>,
    devices: Vec<FleetDevice>,
    options: &FleetOptions,
) -> Result<(FleetReport, Vec<FleetDevice>), String> {
    let count = devices.len();
    let tasks = options.tasks.clamp(1, count.max(1));
    let groups = deal(http, &endpoints, devices, options.readings, tasks)?;
    let ack_log = open_ack_log(options.ack_log.as_deref())?;
    let shared = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + options.warmup;
    let schedule = Schedule {
        measure_from,
        end: measure_from + options.duration,
        period: (options.rate > 0.0).then(|| Duration::from_secs_f64(tasks as f64 / options.rate)),
    };

    let mut set = JoinSet::new();
    for (k, group) in groups.into_iter().enumerate() {
        // Open-loop schedulers start spread over one period, so the load is even.
        let offset = schedule
            .period
            .map_or(Duration::ZERO, |p| p.mul_f64(k as f64 / tasks as f64));
        let scheduler = Scheduler {
            group,
            first: start + offset,
            schedule,
            readings: options.readings,
            shared: Arc::clone(&shared),
            ack_log: ack_log.clone(),
        };
        set.spawn(scheduler.drive());
    }
    let progress = tokio::spawn(progress(
        Arc::clone(&shared),
        start,
        measure_from,
        options.progress_every,
    ));
    let mut devices = Vec::with_capacity(count);
    while let Some(done) = set.join_next().await {
        devices.extend(done.map_err(|e| e.to_string())?);
    }
    progress.abort();
    if let Some(log) = &ack_log {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
            .map_err(|e| format!("writing the ack log: {e}"))?;
    }
    let tally = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
    devices.sort_by(|a: &FleetDevice, b| a.serial.cmp(&b.serial));
    Ok((FleetReport::new(count, options.duration, tally), devices))
}

/// Makes every device a [`Firmware`] sharing the HTTP client and one clock, and deals them out
/// to `tasks` schedulers in turn; each keeps its key's PEM to store the device again.
fn deal(
    http: &reqwest::Client,
    endpoints: &Arc<Endpoints>,
    devices: Vec<FleetDevice>,
    readings: usize,
    tasks: usize,
) -> Result<Vec<Vec<(Firmware, String)>>, String> {
    let clock: SharedClock = Arc::new(SystemClock);
    let mut groups: Vec<Vec<(Firmware, String)>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, d) in devices.into_iter().enumerate() {
        let der = pkcs8_from_pem(&d.key_pem).ok_or_else(|| format!("{}: bad key", d.serial))?;
        let key = DeviceKey::from_pkcs8(&der).map_err(|_| format!("{}: bad key", d.serial))?;
        let client = DeviceClient::new(
            http.clone(),
            Arc::clone(endpoints),
            &d.serial,
            key,
            Arc::clone(&clock),
        );
        let firmware = Firmware::new(
            client,
            Some(d.tokens),
            None,
            FirmwareOptions {
                batch: readings.max(1),
                ..FirmwareOptions::default()
            },
        );
        groups[i % tasks].push((firmware, d.key_pem));
    }
    Ok(groups)
}

type AckLog = Arc<Mutex<std::io::BufWriter<std::fs::File>>>;

/// The ack log at `path`, opened for appending, if one was asked for.
fn open_ack_log(path: Option<&Path>) -> Result<Option<AckLog>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(Some(Arc::new(Mutex::new(std::io::BufWriter::new(file)))))
}

/// When uploads are counted and stop, and how often each scheduler sends: every `period`
/// (open loop), or back to back when there is none (closed loop).
#[derive(Debug, Clone, Copy)]
struct Schedule {
    measure_from: Instant,
    end: Instant,
    period: Option<Duration>,
}

/// One scheduler: its devices, when it sends first, and where its results go.
struct Scheduler {
    group: Vec<(Firmware, String)>,
    first: Instant,
    schedule: Schedule,
    /// Readings measured before each upload.
    readings: usize,
    shared: Arc<Mutex<Tally>>,
    ack_log: Option<AckLog>,
}

impl Scheduler {
    /// Sends from its devices in turn, one upload at a time, at `first + n * period` (open
    /// loop) or back to back (closed loop); returns the devices with their current tokens.
    async fn drive(mut self) -> Vec<FleetDevice> {
        let Schedule {
            measure_from,
            end,
            period,
        } = self.schedule;
        let mut due = self.first;
        let mut turn = 0;
        let mut local = Tally::default();
        let mut last_flush = Instant::now();
        // A scheduler that fell behind still stops at the end: what it could not send counts as
        // load not served, and the latency of what it sent shows how far behind it was.
        while !self.group.is_empty() && due < end && Instant::now() < end {
            tokio::time::sleep_until(due.into()).await;
            let sent = match period {
                Some(_) => due,
                None => Instant::now(),
            };
            let at = turn % self.group.len();
            let (firmware, _) = &mut self.group[at];
            turn += 1;
            for _ in 0..self.readings {
                firmware.measure();
            }
            let result = firmware.sync().await;
            let latency = sent.elapsed();
            let (synced, failure) = sync_outcome(result);
            if let (Some(s), Some(log)) = (&synced, &self.ack_log) {
                log_acknowledged(log, firmware.client().serial(), s);
            }
            if sent >= measure_from {
                local.count(latency, synced, failure);
            }
            if last_flush.elapsed() >= Duration::from_millis(500) {
                self.flush(&mut local);
                last_flush = Instant::now();
            }
            due = match period {
                Some(p) => due + p,
                None => Instant::now(),
            };
        }
        self.flush(&mut local);
        self.into_devices()
    }

    /// Moves the scheduler's own tally into the shared one.
    fn flush(&self, local: &mut Tally) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(local);
    }

    /// The devices as kept between runs (one without tokens is left out).
    fn into_devices(self) -> Vec<FleetDevice> {
        self.group
            .into_iter()
            .filter_map(|(f, key_pem)| {
                Some(FleetDevice {
                    serial: f.client().serial().to_owned(),
                    key_pem,
                    tokens: f.tokens()?.clone(),
                })
            })
            .collect()
    }
}

/// What a sync got through (all of it, or its progress before a transient failure) and the
/// label of its failure, if any.
fn sync_outcome(result: Result<Synced, SyncError>) -> (Option<Synced>, Option<String>) {
    match result {
        Ok(synced) => (Some(synced), None),
        Err(SyncError::Transient {
            reason, progress, ..
        }) => (Some(progress), Some(failure_kind(&reason))),
        Err(e) => (None, Some(failure_kind(&e.to_string()))),
    }
}

/// Appends `serial id` for every reading the server acknowledged.
fn log_acknowledged(log: &AckLog, serial: &str, synced: &Synced) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    for id in &synced.acknowledged {
        // Written only once the server acknowledged the batch's commit.
        let _ = writeln!(log, "{serial} {id}");
    }
}

/// A short label for a failure (no ids, no tokens).
fn failure_kind(reason: &str) -> String {
    if reason.contains("answered") {
        reason.trim_end_matches("; will retry").to_owned()
    } else if reason.contains("pair again") {
        "needs pairing".to_owned()
    } else {
        "network".to_owned()
    }
}

/// Prints a line every `every`: uploads per second and latency percentiles over that window.
async fn progress(
    shared: Arc<Mutex<Tally>>,
    start: Instant,
    measure_from: Instant,
    every: Duration,
) {
    tokio::time::sleep_until(start.into()).await;
    let mut seen_uploads = 0u64;
    let mut seen_samples = 0usize;
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let (uploads, mut window, failures) = {
            let t = shared.lock().unwrap_or_else(PoisonError::into_inner);
            (
                t.uploads,
                t.latencies[seen_samples.min(t.latencies.len())..].to_vec(),
                t.failures.values().sum::<u64>(),
            )
        };
        seen_samples += window.len();
        window.sort_unstable();
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        let phase = if Instant::now() < measure_from {
            "warm-up"
        } else {
            "measuring"
        };
        eprintln!(
            "[{phase} {:>5.0} s] {:>8.0} uploads/s  p50 {:>7.2} ms  p99 {:>7.2} ms  \
             failures so far {failures}",
            start.elapsed().as_secs_f64(),
            (uploads - seen_uploads) as f64 / elapsed,
            percentile(&window, 0.5),
            percentile(&window, 0.99),
        );
        seen_uploads = uploads;
    }
}
