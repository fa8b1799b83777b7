//! What a paired device does all day, as firmware would: measure into a bounded buffer, keep its
//! tokens (on disk when given a path), refresh them before they expire, upload the buffer in
//! batches, and when the server is unreachable or busy keep the readings and try again later.
//! Reading ids are `<boot id>-<counter>`, unique for the device across restarts, so a batch
//! retried after a lost answer is counted as duplicates, never stored twice.
//!
//! No sleeping here: [`Firmware::sync`] does one round of work and says when to come back, so
//! the `run` loop, the fleet and the tests drive it on their own clocks.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{DeviceClient, SimError, SimReading, TokenSet, UploadResult};

/// How a device behaves.
#[derive(Debug, Clone, Copy)]
pub struct FirmwareOptions {
    /// Readings per upload at most.
    pub batch: usize,
    /// Readings kept while offline; the oldest are dropped beyond this.
    pub buffer: usize,
    /// Refresh when the access token has less than this left, in seconds.
    pub refresh_margin_secs: i64,
}

impl Default for FirmwareOptions {
    fn default() -> Self {
        Self {
            batch: 10,
            buffer: 10_000,
            refresh_margin_secs: 60,
        }
    }
}

/// What one [`Firmware::sync`] achieved.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Synced {
    pub uploads: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// Ids of the readings the server acknowledged (stored now or before).
    pub acknowledged: Vec<String>,
    /// Readings dropped because the server refused their batch for good (a 4xx).
    pub dropped: u64,
    pub refreshed: bool,
}

/// Why a sync stopped before the buffer was empty.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server is unreachable or busy; the readings are kept. Come back after `retry_after`
    /// (the server's Retry-After) or your own backoff.
    #[error("{reason}; will retry")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        progress: Synced,
    },
    /// The tokens are gone (revoked, expired, never paired): the device must pair again.
    #[error("the device must pair again: {0}")]
    NeedsPairing(String),
    #[error("cannot keep the tokens: {0}")]
    Storage(String),
}

pub struct Firmware {
    client: DeviceClient,
    tokens: Option<TokenSet>,
    tokens_path: Option<PathBuf>,
    options: FirmwareOptions,
    buffer: VecDeque<SimReading>,
    boot_id: String,
    counter: u64,
    dropped_offline: u64,
    /// The client's clock offset the buffered readings were stamped with.
    stamped_offset: i64,
    /// A refresh was sent and no answer came back: the server may have rotated the tokens
    /// already, and only a retry of the same refresh token, with the same key, soon (within the
    /// server's `oauth.refresh_retry_grace_secs`), gets the new ones. Any other refresh token
    /// presented later would be a reuse that ends the pairing.
    refresh_in_doubt: bool,
}

impl Firmware {
    /// A device with its tokens in memory only (`tokens_path` None) or kept in a file.
    pub fn new(
        client: DeviceClient,
        tokens: Option<TokenSet>,
        tokens_path: Option<PathBuf>,
        options: FirmwareOptions,
    ) -> Self {
        Self {
            stamped_offset: client.clock_offset_secs(),
            client,
            tokens,
            tokens_path,
            options,
            buffer: VecDeque::new(),
            boot_id: crate::crypto::jose::b64(rand::random::<[u8; 6]>()),
            counter: 0,
            dropped_offline: 0,
            refresh_in_doubt: false,
        }
    }

    /// Once the device has set its clock from the server's `Date`, readings it took before then
    /// were stamped by the wrong clock: they move by the same amount.
    fn restamp(&mut self) {
        let offset = self.client.clock_offset_secs();
        let shift_ms = (offset - self.stamped_offset) * 1000;
        if shift_ms != 0 {
            for reading in &mut self.buffer {
                reading.ts += shift_ms;
            }
            self.stamped_offset = offset;
        }
    }

    pub fn client(&self) -> &DeviceClient {
        &self.client
    }

    pub fn tokens(&self) -> Option<&TokenSet> {
        self.tokens.as_ref()
    }

    /// Installs tokens from a (new) pairing, and keeps them.
    pub fn set_tokens(&mut self, tokens: TokenSet) -> Result<(), SyncError> {
        if let Some(path) = &self.tokens_path {
            save_tokens(path, &tokens).map_err(SyncError::Storage)?;
        }
        self.tokens = Some(tokens);
        Ok(())
    }

    /// Readings waiting to be uploaded.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Readings dropped because the buffer was full.
    pub fn dropped_offline(&self) -> u64 {
        self.dropped_offline
    }

    /// Takes a measurement now (simulated sensors) into the buffer; returns its id.
    pub fn measure(&mut self) -> String {
        let now_ms = self.client.now() * 1000;
        let t = now_ms as f64 / 1000.0;
        let noise = || rand::random::<f64>() - 0.5;
        let metrics = vec![
            (
                "temperature".to_owned(),
                round(21.0 + 3.0 * (t / 3600.0).sin() + noise()),
            ),
            (
                "humidity".to_owned(),
                round(45.0 + 10.0 * (t / 7200.0).cos() + noise()),
            ),
            ("pressure".to_owned(), round(1013.0 + 2.0 * noise())),
        ];
        self.record(now_ms, metrics)
    }

    /// Puts a reading with the given metrics into the buffer; returns its id.
    pub fn record(&mut self, ts_ms: i64, metrics: Vec<(String, f64)>) -> String {
        self.restamp();
        self.counter += 1;
        let id = format!("{}-{}", self.boot_id, self.counter);
        if self.buffer.len() >= self.options.buffer {
            self.buffer.pop_front();
            self.dropped_offline += 1;
        }
        self.buffer.push_back(SimReading {
            id: id.clone(),
            ts: ts_ms,
            metrics,
        });
        id
    }

    /// Whether a refresh went out without an answer and is being retried.
    pub fn refresh_in_doubt(&self) -> bool {
        self.refresh_in_doubt
    }

    /// Refreshes the tokens when they are about to expire, or at once when a refresh lost its
    /// answer.
    pub async fn refresh_if_due(&mut self) -> Result<bool, SyncError> {
        let Some(tokens) = &self.tokens else {
            return Err(SyncError::NeedsPairing("no tokens".into()));
        };
        let left = tokens.expires_at - self.client.now();
        if left > self.options.refresh_margin_secs && !self.refresh_in_doubt {
            return Ok(false);
        }
        self.refresh().await
    }

    /// Spends the refresh token. When no answer comes back, the request may still have reached
    /// the server, which would then have moved on to the next token: so the same token stays
    /// (never a newer or older one), and the sync stops with a transient error, so that the
    /// caller's backoff brings the device back in seconds to present it again, while the
    /// server's retry grace lasts.
    async fn refresh(&mut self) -> Result<bool, SyncError> {
        let Some(refresh_token) = self.tokens.as_ref().and_then(|t| t.refresh_token.clone()) else {
            return Err(SyncError::NeedsPairing("no refresh token".into()));
        };
        match self.client.refresh(&refresh_token).await {
            Ok(fresh) => {
                self.refresh_in_doubt = false;
                self.set_tokens(fresh)?;
                Ok(true)
            }
            // The server refused the refresh token itself: revoked, expired or reused.
            Err(SimError::Refused { status, body, .. }) if (400..500).contains(&status) => {
                self.refresh_in_doubt = false;
                self.tokens = None;
                Err(SyncError::NeedsPairing(format!("refresh refused: {body}")))
            }
            Err(e) => {
                self.refresh_in_doubt = true;
                Err(SyncError::Transient {
                    reason: format!("the refresh did not complete ({e}); retrying the same token"),
                    retry_after: None,
                    progress: Synced::default(),
                })
            }
        }
    }

    /// Uploads the buffer, oldest first, in batches; refreshes first when due, and once more if
    /// the server says the token is no longer good.
    pub async fn sync(&mut self) -> Result<Synced, SyncError> {
        let mut done = Synced {
            refreshed: self.refresh_if_due().await?,
            ..Synced::default()
        };
        let mut refreshed_for_rejection = false;
        while !self.buffer.is_empty() {
            self.restamp();
            let n = self.buffer.len().min(self.options.batch.max(1));
            let batch: Vec<SimReading> = self.buffer.iter().take(n).cloned().collect();
            let Some(token) = self.tokens.as_ref().map(|t| t.access_token.clone()) else {
                return Err(SyncError::NeedsPairing("no tokens".into()));
            };
            let transient = |reason: String, retry_after, progress| SyncError::Transient {
                reason,
                retry_after,
                progress,
            };
            match self.client.upload(&token, &batch).await {
                Ok(UploadResult::Stored {
                    accepted,
                    duplicates,
                }) => {
                    self.buffer.drain(..n);
                    done.uploads += 1;
                    done.accepted += accepted;
                    done.duplicates += duplicates;
                    done.acknowledged.extend(batch.into_iter().map(|r| r.id));
                }
                Ok(UploadResult::TokenRejected(reason)) => {
                    if refreshed_for_rejection {
                        return Err(SyncError::NeedsPairing(reason));
                    }
                    refreshed_for_rejection = true;
                    done.refreshed |= self.refresh().await?;
                }
                Ok(UploadResult::Rejected { status, error }) => {
                    tracing::warn!(
                        status,
                        %error,
                        readings = n,
                        "upload refused; dropping the batch"
                    );
                    self.buffer.drain(..n);
                    done.dropped += n as u64;
                }
                Ok(UploadResult::RetryLater {
                    status,
                    retry_after,
                }) => {
                    return Err(transient(
                        format!("the server answered {status}"),
                        retry_after.map(Duration::from_secs),
                        done,
                    ));
                }
                Err(e) => return Err(transient(e.to_string(), None, done)),
            }
        }
        Ok(done)
    }
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … up to a cap, reset after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: u32,
    cap: Duration,
}

impl Backoff {
    pub fn new(cap: Duration) -> Self {
        Self { failures: 0, cap }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt (at least `floor`, e.g. the server's Retry-After).
    pub fn next(&mut self, floor: Option<Duration>) -> Duration {
        let base = Duration::from_secs(1u64 << self.failures.min(16)).min(self.cap);
        self.failures += 1;
        let jittered = base.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        jittered.max(floor.unwrap_or_default())
    }
}

/// Reads a token file written by [`save_tokens`].
pub fn load_tokens(path: &Path) -> Result<Option<TokenSet>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes tokens (mode 0600) through a temporary file and a rename, so a crash never leaves half
/// a token file.
pub fn save_tokens(path: &Path, tokens: &TokenSet) -> Result<(), String> {
    let json = serde_json::to_string_pretty(tokens).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
