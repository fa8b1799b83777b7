//! Measurements for `/metrics`, recorded through the `metrics` facade. Each running context has
//! its own Prometheus recorder ([`Registry`]), so several servers in one process (the tests) keep
//! their own values; the domain and the store hold [`Meters`], handles bound to that recorder,
//! and never see the exporter.
//!
//! HTTP requests are labelled by route pattern (`/api/v1/devices/{serial}/telemetry`), never by
//! the raw path, so a scan of random URLs cannot blow up the number of series.

use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const HTTP_REQUESTS: &str = "pairgate_http_requests_total";
const HTTP_DURATION: &str = "pairgate_http_request_duration_seconds";
const SLOW_DOWN: &str = "pairgate_oauth_slow_down_total";
const REFRESH_REUSE: &str = "pairgate_oauth_refresh_token_reuse_total";
const THROTTLED: &str = "pairgate_throttled_total";
const TELEMETRY_QUEUE: &str = "pairgate_telemetry_queue_depth";
const GROUP_COMMIT: &str = "pairgate_sqlite_group_commit_size";
const POOL_OPEN: &str = "pairgate_db_pool_connections";
const POOL_IDLE: &str = "pairgate_db_pool_idle_connections";

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds of the group-commit size buckets, in writes (a group holds at most 256).
const GROUP_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A rate limit that refused a request: the `limit` label of `pairgate_throttled_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Device authorization requests per device and hour, or per address and minute.
    DeviceAuthorization,
    /// Sign-in answers (passwords, second factors) per account and address.
    SignInAccount,
    /// Sign-in answers per address.
    SignInAddress,
    /// The account's second-factor budget, shared by every address.
    SecondFactorBudget,
    /// Sign-ups per address and hour.
    SignUp,
    /// Invitations per tenant and hour.
    Invitations,
    /// The password-hashing queue was full (answered 503).
    PasswordHashQueue,
    /// User-code attempts per person and window.
    UserCodePerson,
    /// User-code attempts per session and window.
    UserCodeSession,
    /// User-code attempts per address and window.
    UserCodeAddress,
    /// User-code attempts per network and window.
    UserCodeNetwork,
    /// User-code attempts over everyone (addresses not proven by a pairing) and window.
    UserCodeOverall,
}

impl Limit {
    const ALL: [Self; 12] = [
        Self::DeviceAuthorization,
        Self::SignInAccount,
        Self::SignInAddress,
        Self::SecondFactorBudget,
        Self::SignUp,
        Self::Invitations,
        Self::PasswordHashQueue,
        Self::UserCodePerson,
        Self::UserCodeSession,
        Self::UserCodeAddress,
        Self::UserCodeNetwork,
        Self::UserCodeOverall,
    ];

    /// The label value, as `docs/operations.md` lists it.
    pub fn label(self) -> &'static str {
        match self {
            Self::DeviceAuthorization => "device_authorization",
            Self::SignInAccount => "sign_in_account",
            Self::SignInAddress => "sign_in_address",
            Self::SecondFactorBudget => "second_factor_budget",
            Self::SignUp => "sign_up",
            Self::Invitations => "invitations",
            Self::PasswordHashQueue => "password_hash_queue",
            Self::UserCodePerson => "user_code_person",
            Self::UserCodeSession => "user_code_session",
            Self::UserCodeAddress => "user_code_address",
            Self::UserCodeNetwork => "user_code_network",
            Self::UserCodeOverall => "user_code_overall",
        }
    }
}

/// The domain's and the store's handles; cheap to clone.
#[derive(Clone)]
pub struct Meters {
    /// Device-code polls answered `slow_down` (RFC 8628 §3.5).
    pub slow_down: Counter,
    /// Refresh tokens presented again after their family moved on (the family is revoked).
    pub refresh_reuse: Counter,
    /// Uploads waiting for the telemetry writer.
    pub telemetry_queue: Gauge,
    /// Writes committed together by the SQLite writer.
    pub group_commit_size: Histogram,
    /// One counter per [`Limit`], in the order of `Limit::ALL`.
    throttled: Arc<[Counter]>,
}

impl Meters {
    /// Handles that record nothing (commands that serve no `/metrics`).
    pub fn noop() -> Self {
        Self {
            slow_down: Counter::noop(),
            refresh_reuse: Counter::noop(),
            telemetry_queue: Gauge::noop(),
            group_commit_size: Histogram::noop(),
            throttled: Limit::ALL.map(|_| Counter::noop()).into(),
        }
    }

    /// Describes the measurements to `recorder` and returns handles bound to it.
    pub fn register(recorder: &dyn Recorder) -> Self {
        metrics::with_local_recorder(recorder, || {
            metrics::describe_counter!(SLOW_DOWN, "Device-code polls answered slow_down.");
            metrics::describe_counter!(
                REFRESH_REUSE,
                "Refresh tokens used again after rotation; each revoked its family."
            );
            metrics::describe_counter!(THROTTLED, "Requests refused by a rate limit, by limit.");
            metrics::describe_gauge!(TELEMETRY_QUEUE, "Uploads waiting for the telemetry writer.");
            metrics::describe_histogram!(
                GROUP_COMMIT,
                "Writes committed together by the SQLite writer."
            );
            Self {
                slow_down: metrics::counter!(SLOW_DOWN),
                refresh_reuse: metrics::counter!(REFRESH_REUSE),
                telemetry_queue: metrics::gauge!(TELEMETRY_QUEUE),
                group_commit_size: metrics::histogram!(GROUP_COMMIT),
                // Every limit registered up front, so each series shows (at 0) before its first
                // refusal and a rate over it needs no special case.
                throttled: Limit::ALL
                    .map(|limit| metrics::counter!(THROTTLED, "limit" => limit.label()))
                    .into(),
            }
        })
    }

    /// Counts one request refused by `limit`.
    pub fn throttled(&self, limit: Limit) {
        if let Some(counter) = self.throttled.get(limit as usize) {
            counter.increment(1);
        }
    }
}

/// One context's Prometheus recorder: HTTP requests, the [`Meters`] and the pool gauges.
pub struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    meters: Meters,
    pool_open: Gauge,
    pool_idle: Gauge,
}

impl Registry {
    /// A fresh recorder, with its periodic upkeep on the current tokio runtime: histogram
    /// samples wait in a buffer until they are folded into buckets, at each scrape or upkeep.
    pub fn start() -> Arc<Self> {
        let registry = Arc::new(Self::new());
        let weak: Weak<Self> = Arc::downgrade(&registry);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.handle.run_upkeep();
            }
        });
        registry
    }

    fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(GROUP_COMMIT.into()), &GROUP_BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let meters = Meters::register(&recorder);
        let (pool_open, pool_idle) = metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(HTTP_REQUESTS, "HTTP responses by route and status.");
            metrics::describe_histogram!(HTTP_DURATION, "HTTP request latency by route.");
            metrics::describe_gauge!(POOL_OPEN, "Open database connections.");
            metrics::describe_gauge!(POOL_IDLE, "Idle database connections.");
            (metrics::gauge!(POOL_OPEN), metrics::gauge!(POOL_IDLE))
        });
        Self {
            recorder,
            handle,
            meters,
            pool_open,
            pool_idle,
        }
    }

    /// The handles the domain and the store record through.
    pub fn meters(&self) -> &Meters {
        &self.meters
    }

    /// Records one finished request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        metrics::with_local_recorder(&self.recorder, || {
            let (method, route) = (method.to_owned(), route.to_owned());
            metrics::counter!(
                HTTP_REQUESTS,
                "method" => method.clone(),
                "route" => route.clone(),
                "status" => status.to_string()
            )
            .increment(1);
            metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
                .record(elapsed.as_secs_f64());
        });
    }

    /// Everything, as Prometheus text (format 0.0.4), with the pool gauges read now.
    pub fn render(&self, pool_open: u32, pool_idle: u32) -> String {
        self.pool_open.set(f64::from(pool_open));
        self.pool_idle.set(f64::from(pool_idle));
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Registry::new();
        m.request("GET", "/healthz", 200, Duration::from_micros(300));
        m.request("GET", "/healthz", 200, Duration::from_millis(30));
        m.request("GET", "/healthz", 503, Duration::from_secs(9));
        let text = m.render(1, 0);
        assert!(text.contains(
            "pairgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(
            text.contains("route=\"/healthz\",le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(text.contains("route=\"/healthz\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("route=\"/healthz\",le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("pairgate_db_pool_connections 1"), "{text}");
    }

    #[test]
    fn registries_keep_their_own_values() {
        let (a, b) = (Registry::new(), Registry::new());
        a.meters().slow_down.increment(2);
        a.meters().throttled(Limit::DeviceAuthorization);
        assert!(a.render(0, 0).contains("pairgate_oauth_slow_down_total 2"));
        assert!(
            a.render(0, 0)
                .contains("pairgate_throttled_total{limit=\"device_authorization\"} 1")
        );
        assert!(b.render(0, 0).contains("pairgate_oauth_slow_down_total 0"));
    }

    #[test]
    fn each_limit_counts_in_its_own_series() {
        for refused in Limit::ALL {
            let m = Registry::new();
            m.meters().throttled(refused);
            let text = m.render(0, 0);
            for limit in Limit::ALL {
                let value = u8::from(limit == refused);
                let series = format!("{THROTTLED}{{limit=\"{}\"}} {value}\n", limit.label());
                assert!(text.contains(&series), "{series} in {text}");
            }
        }
    }
}
