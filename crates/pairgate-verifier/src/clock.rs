//! The time a [`Verifier`](crate::Verifier) checks `exp`, `iat` and proofs against. The crate
//! reads no clock of its own accord: its user passes one in, so tests (pairgate's and a relying
//! app's) can move time instead of sleeping. [`SystemClock`] is the only code here that reads
//! the wall clock; clippy's `disallowed-methods` keeps the rest from doing so.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the verifier crate's one wall-clock reader"
    )]
    fn now_ms(&self) -> i64 {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}
