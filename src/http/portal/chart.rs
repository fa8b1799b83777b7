//! Telemetry on the device page: per metric, the latest value and a small line chart drawn as
//! inline SVG on the server (no scripts; the page's CSP allows none). The chart shows the mean of
//! each bucket as a line over a band from its minimum to its maximum, with the value range and the
//! time window written on it, and an `aria-label` that says the same in words.

use super::texts::Line;
use crate::telemetry::{DeviceOverview, MetricOverview};

/// The SVG's coordinate system; it scales to the page's width.
const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 120.0;
/// Room at the top and bottom for the value labels.
const PAD_Y: f64 = 14.0;

/// The windows the page offers, as (query value, label, milliseconds, buckets).
pub const WINDOWS: [(&str, &str, i64, usize); 3] = [
    ("1h", "hour", 3_600_000, 60),
    ("24h", "24 hours", 86_400_000, 96),
    ("7d", "7 days", 7 * 86_400_000, 84),
];

/// The window named by `?window=`, the 24 hours by default.
pub fn window(name: Option<&str>) -> (&'static str, &'static str, i64, usize) {
    WINDOWS
        .into_iter()
        .find(|w| Some(w.0) == name)
        .unwrap_or(WINDOWS[1])
}

/// One metric's chart, ready for the template (every string is plain text, escaped there).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub name: String,
    pub latest: String,
    pub latest_at: String,
    /// `points` of the mean line.
    pub line: String,
    /// `points` of the min–max band (a closed polygon).
    pub band: String,
    /// The single point when there is only one bucket (a line needs two).
    pub dot: Option<(String, String)>,
    pub low: String,
    pub high: String,
    pub description: String,
}

/// The charts of an overview, in metric-name order.
pub fn charts(overview: &DeviceOverview, window_label: &str) -> Vec<Chart> {
    overview
        .metrics
        .iter()
        .map(|m| chart(m, overview.from, overview.to, window_label))
        .collect()
}

fn chart(m: &MetricOverview, from: i64, to: i64, window_label: &str) -> Chart {
    let low = m.series.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
    let high = m
        .series
        .iter()
        .map(|p| p.max)
        .fold(f64::NEG_INFINITY, f64::max);
    // A flat series still gets a visible range around its value.
    let (lo, hi) = if high > low {
        (low, high)
    } else {
        (low - 1.0, high + 1.0)
    };
    let span = (to - from).max(1) as f64;
    let x = |ts: i64| ((ts - from) as f64 / span * WIDTH).clamp(0.0, WIDTH);
    let y = |v: f64| PAD_Y + (hi - v) / (hi - lo) * (HEIGHT - 2.0 * PAD_Y);
    let point = |ts: i64, v: f64| format!("{:.1},{:.1}", x(ts), y(v));
    let line: Vec<String> = m.series.iter().map(|p| point(p.ts, p.mean)).collect();
    let mut band: Vec<String> = m.series.iter().map(|p| point(p.ts, p.max)).collect();
    band.extend(m.series.iter().rev().map(|p| point(p.ts, p.min)));
    let dot = match m.series.as_slice() {
        [only] => Some((format!("{:.1}", x(only.ts)), format!("{:.1}", y(only.mean)))),
        _ => None,
    };
    let (low, high) = (number(low), number(high));
    Chart {
        name: m.name.clone(),
        latest: number(m.latest.1),
        latest_at: super::when(m.latest.0),
        description: Line::Chart {
            name: &m.name,
            window: window_label,
            low: &low,
            high: &high,
            latest: &number(m.latest.1),
        }
        .to_string(),
        line: line.join(" "),
        band: band.join(" "),
        dot,
        low,
        high,
    }
}

/// A reading for people: at most four decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::SeriesPoint;

    fn metric(series: Vec<SeriesPoint>) -> MetricOverview {
        MetricOverview {
            name: "temperature".into(),
            latest: (90, 21.5),
            series,
        }
    }

    fn p(ts: i64, mean: f64, min: f64, max: f64) -> SeriesPoint {
        SeriesPoint { ts, mean, min, max }
    }

    #[test]
    fn the_line_spans_the_window_and_the_value_range() {
        let c = chart(
            &metric(vec![p(0, 10.0, 10.0, 10.0), p(50, 20.0, 15.0, 30.0)]),
            0,
            100,
            "hour",
        );
        // x: 0 → 0, 50 → half the width; y: the highest value at the top pad, the lowest at the
        // bottom one.
        assert_eq!(c.line, "0.0,106.0 160.0,60.0");
        assert_eq!(c.band, "0.0,106.0 160.0,14.0 160.0,83.0 0.0,106.0");
        assert_eq!((c.low.as_str(), c.high.as_str()), ("10", "30"));
        assert_eq!(c.latest, "21.5");
        assert_eq!(c.dot, None);
        assert!(c.description.contains("between 10 and 30"));
    }

    #[test]
    fn a_single_flat_point_is_drawn_as_a_dot_in_the_middle() {
        let c = chart(&metric(vec![p(25, 5.0, 5.0, 5.0)]), 0, 100, "hour");
        assert_eq!(c.dot, Some(("80.0".into(), "60.0".into())));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(21.5), "21.5");
        assert_eq!(number(40.0), "40");
        assert_eq!(number(0.123456), "0.1235");
        assert_eq!(number(-0.00001), "0");
        assert_eq!(number(-3.25), "-3.25");
    }

    #[test]
    fn unknown_windows_fall_back_to_a_day() {
        assert_eq!(window(Some("1h")).2, 3_600_000);
        assert_eq!(window(Some("forever")).0, "24h");
        assert_eq!(window(None).0, "24h");
    }
}
