use super::*;
use crate::telemetry::SeriesPoint;

const HOUR: i64 = 3_600_000;
/// 2026-12-05T00:00:00Z.
const DAY: i64 = 1_796_428_800_000;

fn meta() -> MetricMeta {
    MetricMeta {
        key: "flow".into(),
        label: "Flow".into(),
        unit: Some("m³/h".into()),
        decimals: Some(1),
        min: None,
        max: None,
    }
}

fn p(ts: i64, mean: f64, min: f64, max: f64) -> SeriesPoint {
    SeriesPoint { ts, mean, min, max }
}

fn span(from: i64, to: i64, zone: &str) -> Span<'static> {
    Span {
        from,
        to,
        during: "in the last 24 hours",
        over: "over the last 24 hours",
        zone: Zone::parse(zone).unwrap(),
    }
}

fn labels(ticks: &[Tick]) -> Vec<&str> {
    ticks.iter().map(|t| t.label.as_str()).collect()
}

#[test]
fn a_day_has_ticks_every_four_hours_in_the_viewers_zone() {
    // 24 hours ending 12:00 UTC, seen from Berlin (UTC+1 in December).
    let ticks = time_ticks(
        DAY - 12 * HOUR,
        DAY + 12 * HOUR,
        Zone::parse("Europe/Berlin").unwrap(),
    );
    assert_eq!(
        labels(&ticks),
        ["16:00", "20:00", "5 Dec", "04:00", "08:00", "12:00"]
    );
    let utc = time_ticks(DAY - 12 * HOUR, DAY + 12 * HOUR, Zone::UTC);
    assert_eq!(
        labels(&utc),
        [
            "12:00", "16:00", "20:00", "5 Dec", "04:00", "08:00", "12:00"
        ]
    );
}

#[test]
fn ranges_choose_minutes_hours_or_days() {
    let hour = time_ticks(DAY, DAY + HOUR, Zone::UTC);
    assert_eq!(
        labels(&hour),
        [
            "5 Dec", "00:10", "00:20", "00:30", "00:40", "00:50", "01:00"
        ]
    );
    let week = time_ticks(DAY, DAY + 7 * 24 * HOUR, Zone::UTC);
    assert_eq!(labels(&week), ["5 Dec", "7 Dec", "9 Dec", "11 Dec"]);
    let month = time_ticks(DAY, DAY + 30 * 24 * HOUR, Zone::UTC);
    assert_eq!(
        labels(&month),
        ["5 Dec", "12 Dec", "19 Dec", "26 Dec", "2 Jan"]
    );
    for t in hour.iter().chain(&week).chain(&month) {
        let at: f64 = t.at.parse().unwrap();
        assert!((LEFT..=RIGHT).contains(&at), "{t:?}");
    }
}

#[test]
fn the_value_axis_has_nice_ticks_and_the_chart_says_its_unit() {
    let m = MetricOverview {
        name: "flow".into(),
        latest: (DAY + HOUR, 3.25),
        series: vec![p(DAY, 1.2, 0.9, 1.4), p(DAY + HOUR, 3.0, 2.0, 4.7)],
    };
    let c = chart(0, &meta(), Some(&m), &span(DAY, DAY + 2 * HOUR, "UTC"));
    assert_eq!(labels(&c.value_ticks), ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(c.value_ticks[0].at, "180.0");
    assert_eq!(c.value_ticks[5].at, "20.0");
    assert_eq!(c.title, "Flow");
    assert_eq!(c.latest.as_ref().unwrap().0, "3.2 m³/h");
    assert_eq!(c.time_title, "Time (UTC)");
    assert_eq!(
        c.summary,
        "Flow over the last 24 hours: between 0.9 m³/h and 4.7 m³/h, latest 3.2 m³/h"
    );
    assert_eq!(
        c.rows[1],
        [
            "2026-12-05 01:00 UTC".to_owned(),
            "2.0".into(),
            "3.0".into(),
            "4.7".into()
        ]
    );
    // x: the first bucket at the left edge; y: 1.2 of 0–5.
    assert!(c.line.starts_with("46.0,141.6 "), "{}", c.line);
}

#[test]
fn the_erps_range_widens_the_axis_and_fractional_steps_keep_their_decimals() {
    let m = MetricOverview {
        name: "flow".into(),
        latest: (DAY, 0.3),
        series: vec![p(DAY, 0.3, 0.25, 0.35)],
    };
    let c = chart(0, &meta(), Some(&m), &span(DAY, DAY + HOUR, "UTC"));
    assert_eq!(
        labels(&c.value_ticks),
        ["0.250", "0.275", "0.300", "0.325", "0.350"]
    );
    assert!(c.dot.is_some());
    let mut bounded = meta();
    bounded.min = Some(0.0);
    bounded.max = Some(40.0);
    let c = chart(0, &bounded, Some(&m), &span(DAY, DAY + HOUR, "UTC"));
    assert_eq!(labels(&c.value_ticks), ["0", "10", "20", "30", "40"]);
    assert_eq!(decimals_of(2.5), 1);
    assert_eq!(decimals_of(0.025), 3);
    assert_eq!(nice_range(0.9, 4.7), (0.0, 5.0, 1.0));
}

#[test]
fn an_empty_chart_says_so() {
    let c = chart(2, &meta(), None, &span(DAY, DAY + HOUR, "UTC"));
    assert_eq!(c.summary, "No readings of Flow in the last 24 hours");
    assert!(c.latest.is_none() && c.value_ticks.is_empty() && c.line.is_empty());
    assert_eq!(c.id, "m2");
}

#[test]
fn numbers_read_well() {
    assert_eq!(number(21.5), "21.5");
    assert_eq!(number(40.0), "40");
    assert_eq!(number(0.123456), "0.1235");
    assert_eq!(number(-0.00001), "0");
    assert_eq!(value(21.456, Some(2)), "21.46");
    assert_eq!(value(3.0, None), "3");
}
