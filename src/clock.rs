//! The injected clock. Everything that depends on the time of day (expiry, `slow_down` intervals,
//! TOTP windows, session timeouts) asks a [`Clock`], so tests can move time instead of sleeping.
//! clippy's `disallowed-methods` keeps `Utc::now()` and `SystemTime::now()` out of the rest of the
//! code. Every clock is also the verifier crate's clock (Unix ms), so the one clock drives token
//! verification too.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: pairgate_verifier::Clock + Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// A shared handle to the clock in use.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the wall clock"
    )]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl pairgate_verifier::Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to an instant.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl pairgate_verifier::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::seconds(5));
        assert_eq!(clock.now(), start + Duration::seconds(5));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
