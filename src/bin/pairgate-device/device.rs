//! `pairgate-device run`: the firmware loop of one device, measuring every interval, uploading
//! in batches, refreshing tokens before they expire, and riding out server restarts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pairgate::simulator::client::{DeviceClient, Endpoints, http_client};
use pairgate::simulator::firmware::{
    Backoff, Firmware, FirmwareOptions, SyncError, Synced, load_tokens,
};
use tokio::time::Instant;

use crate::{DeviceArgs, REFRESH_RETRY_CAP, load_key, pair};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Seconds between measurements.
    #[arg(long, default_value_t = 10)]
    interval_secs: u64,
    /// Readings per upload at most (the server accepts telemetry.max_batch_readings).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Upload once this many readings are waiting (1: after every measurement).
    #[arg(long, default_value_t = 1)]
    upload_every: usize,
    /// Pair (showing the code) when there are no tokens or they were revoked, instead of exiting.
    #[arg(long)]
    pair_if_needed: bool,
    /// Stop after this many measurements (default: run until interrupted).
    #[arg(long)]
    measurements: Option<u64>,
}

/// Discovery, retried with backoff: a device that boots while the server is down waits for it.
async fn discover(http: &reqwest::Client, server: &str) -> Endpoints {
    let mut backoff = Backoff::new(Duration::from_secs(60));
    loop {
        match Endpoints::discover(http, server).await {
            Ok(endpoints) => return endpoints,
            Err(e) => {
                let wait = backoff.next(None);
                eprintln!("pairgate-device: {e}; retrying in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `run`: the firmware loop.
pub(super) async fn run(args: RunArgs) -> Result<(), String> {
    let mut device = Device::start(args).await?;
    println!(
        "{} running: a measurement every {} s, tokens in {}",
        device.args.device.serial,
        device.interval.as_secs(),
        device.path.display()
    );
    loop {
        if device.firmware.tokens().is_none() {
            device.pair_again().await?;
        }
        let now = Instant::now();
        if now >= device.next_measure {
            if device.all_measured() && device.firmware.buffered() == 0 {
                return Ok(());
            }
            device.measure();
        }
        if now >= device.next_sync && device.upload_due() {
            device.sync().await?;
        }
        tokio::time::sleep_until(device.wake()).await;
    }
}

/// A running device: its firmware, and when it next measures and uploads.
struct Device {
    args: RunArgs,
    firmware: Firmware,
    /// Where its tokens are kept.
    path: PathBuf,
    interval: Duration,
    backoff: Backoff,
    next_measure: Instant,
    next_sync: Instant,
    measured: u64,
}

impl Device {
    /// Finds the server (waiting for it), loads the key and any stored tokens.
    async fn start(args: RunArgs) -> Result<Self, String> {
        let d = &args.device;
        let http = http_client().map_err(|e| e.to_string())?;
        let endpoints = Arc::new(discover(&http, &d.server).await);
        let client = DeviceClient::new(
            http,
            endpoints,
            &d.serial,
            load_key(&d.key)?,
            Arc::new(pairgate::clock::SystemClock),
        )
        .with_clock_offset(d.clock_offset_secs);
        let path = d.tokens_path();
        let tokens = load_tokens(&path)?;
        let firmware = Firmware::new(
            client,
            tokens,
            Some(path.clone()),
            FirmwareOptions {
                batch: args.batch.max(1),
                ..FirmwareOptions::default()
            },
        );
        let interval = Duration::from_secs(args.interval_secs.max(1));
        let next_measure = Instant::now();
        Ok(Self {
            args,
            firmware,
            path,
            interval,
            backoff: Backoff::new(Duration::from_secs(60)),
            next_measure,
            next_sync: next_measure,
            measured: 0,
        })
    }

    /// Without usable tokens: pairs again when allowed to, showing the code; fails otherwise.
    async fn pair_again(&mut self) -> Result<(), String> {
        if !self.args.pair_if_needed {
            return Err(format!(
                "no usable tokens in {}: pair first (or pass --pair-if-needed)",
                self.path.display()
            ));
        }
        let tokens = pair(self.firmware.client()).await?;
        self.firmware
            .set_tokens(tokens)
            .map_err(|e| e.to_string())?;
        println!("paired: tokens stored in {}", self.path.display());
        Ok(())
    }

    /// Whether the measurements asked for (if any limit was) are all taken.
    fn all_measured(&self) -> bool {
        self.args.measurements.is_some_and(|m| self.measured >= m)
    }

    /// Takes the measurement now due (unless all are taken) and schedules the next.
    fn measure(&mut self) {
        if self.args.measurements.is_none_or(|m| self.measured < m) {
            self.firmware.measure();
            self.measured += 1;
        }
        self.next_measure += self.interval;
    }

    /// Whether enough readings wait for an upload.
    fn upload_due(&self) -> bool {
        self.firmware.buffered() >= self.args.upload_every.max(1)
    }

    /// Uploads what waits. A transient failure keeps the readings and sets when to try again;
    /// revoked tokens stop the device unless it may pair again.
    async fn sync(&mut self) -> Result<(), String> {
        match self.firmware.sync().await {
            Ok(done) => {
                self.backoff.reset();
                if done.uploads > 0 || done.refreshed {
                    print_synced(&done);
                }
            }
            Err(SyncError::Transient {
                reason,
                retry_after,
                ..
            }) => {
                let mut wait = self.backoff.next(retry_after);
                if self.firmware.refresh_in_doubt() {
                    // Back soon, while the server still answers the lost refresh again.
                    wait = wait.min(REFRESH_RETRY_CAP);
                }
                eprintln!(
                    "pairgate-device: {reason}; {} readings kept, retrying in {:.1} s",
                    self.firmware.buffered(),
                    wait.as_secs_f64()
                );
                self.next_sync = Instant::now() + wait;
            }
            Err(SyncError::NeedsPairing(reason)) => {
                eprintln!("pairgate-device: {reason}");
                if !self.args.pair_if_needed {
                    return Err(format!("{reason}: pair again"));
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    }

    /// When to wake: the next measurement, or the next upload if one is due sooner.
    fn wake(&self) -> Instant {
        if self.upload_due() {
            self.next_measure.min(self.next_sync.max(Instant::now()))
        } else {
            self.next_measure
        }
    }
}

fn print_synced(done: &Synced) {
    println!(
        "uploaded {} readings in {} batches ({} new, {} duplicates{}{})",
        done.acknowledged.len(),
        done.uploads,
        done.accepted,
        done.duplicates,
        if done.refreshed {
            "; tokens refreshed"
        } else {
            ""
        },
        if done.dropped > 0 {
            "; a batch was refused and dropped"
        } else {
            ""
        },
    );
}
