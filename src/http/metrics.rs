//! Request counts and latencies per route, rendered in the Prometheus text format for `/metrics`.
//! Routes are labelled by their pattern (`/api/v1/devices/{serial}/telemetry`), never by the raw
//! path, so a scan of random URLs cannot blow up the number of series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Series {
    /// Responses per status code.
    by_status: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// The process-wide HTTP metrics; one per server, shared by its workers.
#[derive(Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String), Series>>,
}

impl HttpMetrics {
    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = series
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *entry.by_status.entry(status).or_default() += 1;
        let h = &mut entry.latency;
        h.count += 1;
        h.sum += seconds;
        for (bound, slot) in BUCKETS.iter().zip(h.buckets.iter_mut()) {
            if seconds <= *bound {
                *slot += 1;
            }
        }
    }

    /// Renders every series, plus the given gauges, as Prometheus text (format 0.0.4).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP pairgate_http_requests_total HTTP responses by route and status.\n");
        out.push_str("# TYPE pairgate_http_requests_total counter\n");
        for ((method, route), s) in series.iter() {
            for (status, count) in &s.by_status {
                let _ = writeln!(
                    out,
                    "pairgate_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP pairgate_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE pairgate_http_request_duration_seconds histogram\n");
        for ((method, route), s) in series.iter() {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (bound, count) in BUCKETS.iter().zip(s.latency.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "pairgate_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let h = &s.latency;
            let _ = writeln!(
                out,
                "pairgate_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "pairgate_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "pairgate_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = HttpMetrics::default();
        m.observe("GET", "/healthz", 200, Duration::from_micros(300));
        m.observe("GET", "/healthz", 200, Duration::from_millis(30));
        m.observe("GET", "/healthz", 503, Duration::from_secs(9));
        let text = m.render(&[]);
        assert!(text.contains(
            "pairgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/healthz\",le=\"0.0005\"} 1"));
        assert!(text.contains("route=\"/healthz\",le=\"0.05\"} 2"));
        assert!(text.contains("route=\"/healthz\",le=\"+Inf\"} 3"));
    }
}
