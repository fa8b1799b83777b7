//! Telemetry on the device page: per metric, a line chart drawn as inline SVG on the server (no
//! scripts; the page's CSP allows none). The metric's label is the title; the value axis has
//! nice tick values and the unit; the time axis has ticks at round times of the viewer's zone
//! (minutes, hours or days, as the range asks), labelled, with the zone's abbreviation. The mean
//! of each bucket is a line over a band from its minimum to its maximum. For screen readers: a
//! `<title>` and `<desc>` that say the series in words, and a table of the buckets' values.

use chrono::{Duration, NaiveTime, TimeZone};

use super::texts::Line;
use super::zone::when_for;
use crate::accounts::Zone;
use crate::telemetry::{MetricMeta, MetricOverview};

/// The plot area inside the SVG's coordinate system (`VIEW_BOX`, which scales to the width of
/// its box): room on the left for value labels, below for time labels.
const LEFT: f64 = 46.0;
const RIGHT: f64 = 392.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 180.0;

/// A tick of an axis: where (an SVG coordinate), its label, and the label's anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: String,
    pub label: String,
    pub anchor: &'static str,
}

/// One metric's chart, ready for the template (every string is plain text, escaped there).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// For `id`s: `m0`, `m1`, …
    pub id: String,
    pub title: String,
    pub unit: Option<String>,
    /// The newest value with its unit, and when (`None`: no readings in the range).
    pub latest: Option<(String, String)>,
    /// The series in one sentence (the SVG's description), or that there are no readings.
    pub summary: String,
    pub line: String,
    pub band: String,
    /// The single point when there is only one bucket (a line needs two).
    pub dot: Option<(String, String)>,
    pub value_ticks: Vec<Tick>,
    pub time_ticks: Vec<Tick>,
    /// "Time (CET)".
    pub time_title: String,
    /// The buckets for the table: time, min, mean, max.
    pub rows: Vec<[String; 4]>,
}

/// The range a page shows, in words and in time.
pub struct Span<'a> {
    pub from: i64,
    pub to: i64,
    /// "in the last 24 hours", "from 1 Dec 2026 to 3 Dec 2026".
    pub during: &'a str,
    /// "over the last 24 hours".
    pub over: &'a str,
    pub zone: Zone,
}

/// A value for people: the metric's decimals, else at most four without trailing zeros.
pub fn value(v: f64, decimals: Option<u8>) -> String {
    match decimals {
        Some(d) => format!("{v:.*}", usize::from(d)),
        None => number(v),
    }
}

/// A value with its unit.
fn with_unit(v: f64, meta: &MetricMeta) -> String {
    match &meta.unit {
        Some(u) => format!("{} {u}", value(v, meta.decimals)),
        None => value(v, meta.decimals),
    }
}

/// The chart of a metric; `overview` is `None` when the range holds no readings of it.
pub fn chart(id: usize, meta: &MetricMeta, m: Option<&MetricOverview>, span: &Span<'_>) -> Chart {
    let time_ticks = time_ticks(span.from, span.to, span.zone);
    let abbreviation = span.zone.tz().timestamp_millis_opt(span.to).single();
    let time_title = format!(
        "Time ({})",
        abbreviation.map_or_else(|| "UTC".to_owned(), |t| t.format("%Z").to_string())
    );
    let mut c = Chart {
        id: format!("m{id}"),
        title: meta.label.clone(),
        unit: meta.unit.clone(),
        latest: None,
        summary: Line::NoReadings {
            name: &meta.label,
            during: span.during,
        }
        .to_string(),
        line: String::new(),
        band: String::new(),
        dot: None,
        value_ticks: Vec::new(),
        time_ticks,
        time_title,
        rows: Vec::new(),
    };
    let Some(m) = m.filter(|m| !m.series.is_empty()) else {
        return c;
    };
    let low = m.series.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
    let high = m
        .series
        .iter()
        .map(|p| p.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi, step) = nice_range(
        meta.min.map_or(low, |b| b.min(low)),
        meta.max.map_or(high, |b| b.max(high)),
    );
    let span_ms = (span.to - span.from).max(1) as f64;
    let x = |ts: i64| LEFT + ((ts - span.from) as f64 / span_ms).clamp(0.0, 1.0) * (RIGHT - LEFT);
    let y = |v: f64| BOTTOM - (v - lo) / (hi - lo) * (BOTTOM - TOP);
    let point = |ts: i64, v: f64| format!("{:.1},{:.1}", x(ts), y(v));
    c.line = m
        .series
        .iter()
        .map(|p| point(p.ts, p.mean))
        .collect::<Vec<_>>()
        .join(" ");
    let mut band: Vec<String> = m.series.iter().map(|p| point(p.ts, p.max)).collect();
    band.extend(m.series.iter().rev().map(|p| point(p.ts, p.min)));
    c.band = band.join(" ");
    if let [only] = m.series.as_slice() {
        c.dot = Some((format!("{:.1}", x(only.ts)), format!("{:.1}", y(only.mean))));
    }
    c.value_ticks = value_ticks(lo, hi, step);
    let latest = with_unit(m.latest.1, meta);
    c.summary = Line::Chart {
        name: &meta.label,
        window: span.over,
        low: &with_unit(low, meta),
        high: &with_unit(high, meta),
        latest: &latest,
    }
    .to_string();
    c.latest = Some((latest, when_for(span.zone, m.latest.0)));
    c.rows = m
        .series
        .iter()
        .map(|p| {
            let v = |n| value(n, meta.decimals);
            [when_for(span.zone, p.ts), v(p.min), v(p.mean), v(p.max)]
        })
        .collect();
    c
}

/// The ticks of a value axis from `lo` to `hi`, `step` apart.
fn value_ticks(lo: f64, hi: f64, step: f64) -> Vec<Tick> {
    let decimals = decimals_of(step);
    (0..)
        .map(|i| lo + step * f64::from(i))
        .take_while(|v| *v <= hi + step / 1e6)
        .map(|v| Tick {
            at: format!("{:.1}", BOTTOM - (v - lo) / (hi - lo) * (BOTTOM - TOP)),
            label: format!("{v:.decimals$}"),
            anchor: "end",
        })
        .collect()
}

/// Axis bounds on multiples of a 1–2–2.5–5 step, about five ticks apart.
fn nice_range(low: f64, high: f64) -> (f64, f64, f64) {
    let (low, high) = if high > low {
        (low, high)
    } else {
        (low - 1.0, high + 1.0)
    };
    let rough = (high - low) / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let lo = (low / step).floor() * step;
    let hi = (high / step).ceil() * step;
    (lo, hi.max(lo + step), step)
}

/// The decimals a tick step needs (2.5 needs one more than 2).
fn decimals_of(step: f64) -> usize {
    let mut d = 0;
    while d < 6
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-9
    {
        d += 1;
    }
    d
}

/// Steps of the time axis, in minutes: the first that puts at most six ticks on the range.
const STEPS_MIN: [i64; 16] = [
    1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440, 2880, 10080, 20160,
];

/// Ticks at round times of the zone (midnight, whole hours, every 15 minutes, …) in `[from,
/// to]`: times of day when the step is under a day (a date at midnight), else dates.
pub fn time_ticks(from: i64, to: i64, zone: Zone) -> Vec<Tick> {
    let tz = zone.tz();
    let span_min = ((to - from) / 60_000).max(1);
    let step = STEPS_MIN
        .into_iter()
        .find(|s| span_min / s <= 6)
        .unwrap_or(STEPS_MIN[STEPS_MIN.len() - 1]);
    let Some(start) = tz.timestamp_millis_opt(from).single() else {
        return Vec::new();
    };
    let midnight = start.date_naive().and_time(NaiveTime::MIN);
    let width = (to - from).max(1) as f64;
    let mut ticks = Vec::new();
    for k in 0..=(span_min / step + 2 + 1440 / step) {
        let naive = midnight + Duration::minutes(k * step);
        let Some(t) = tz.from_local_datetime(&naive).earliest() else {
            continue;
        };
        let ms = t.timestamp_millis();
        if ms > to {
            break;
        }
        if ms < from {
            continue;
        }
        let at = LEFT + (ms - from) as f64 / width * (RIGHT - LEFT);
        let label = if step < 1440 && naive.time() != NaiveTime::MIN {
            t.format("%H:%M").to_string()
        } else {
            t.format("%-d %b").to_string()
        };
        let anchor = if at < LEFT + 18.0 {
            "start"
        } else if at > RIGHT - 18.0 {
            "end"
        } else {
            "middle"
        };
        ticks.push(Tick {
            at: format!("{at:.1}"),
            label,
            anchor,
        });
    }
    ticks
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

/// The SVG's width in its own units, for the template.
pub const VIEW_BOX: &str = "0 0 400 220";

#[cfg(test)]
mod tests;
