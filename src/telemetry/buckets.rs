//! Readings folded into equal time buckets per metric (mean, min and max of each, and the newest
//! value): the charts of the device page and the device overview of the telemetry API.

use std::collections::BTreeMap;

/// One stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingView {
    pub id: String,
    pub ts: i64,
    pub metrics: BTreeMap<String, f64>,
}

/// One point of a bucketed series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// The bucket's start, Unix ms.
    pub ts: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// A metric on the device page.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOverview {
    pub name: String,
    /// The newest value in the window and when it was measured.
    pub latest: (i64, f64),
    /// At most the requested number of points, oldest first.
    pub series: Vec<SeriesPoint>,
}

/// Sum, min, max and count of one bucket.
type Bucket = (f64, f64, f64, u32);
/// A metric's newest (ts, value), and its buckets by index.
type Metric = (Option<(i64, f64)>, BTreeMap<i64, Bucket>);

/// Readings folded into equal buckets per metric, as they are read.
pub(super) struct Buckets {
    from: i64,
    width: i64,
    points: usize,
    by_metric: BTreeMap<String, Metric>,
}

impl Buckets {
    pub(super) fn new(from: i64, to: i64, points: usize) -> Self {
        Self {
            from,
            width: ((to - from) / points as i64).max(1),
            points,
            by_metric: BTreeMap::new(),
        }
    }

    pub(super) fn add(&mut self, r: &ReadingView) {
        for (name, &value) in &r.metrics {
            let (latest, buckets) = self.by_metric.entry(name.clone()).or_default();
            if latest.is_none_or(|(ts, _)| r.ts >= ts) {
                *latest = Some((r.ts, value));
            }
            let bucket = ((r.ts - self.from) / self.width).clamp(0, self.points as i64 - 1);
            let e = buckets
                .entry(bucket)
                .or_insert((0.0, f64::INFINITY, f64::NEG_INFINITY, 0));
            e.0 += value;
            e.1 = e.1.min(value);
            e.2 = e.2.max(value);
            e.3 += 1;
        }
    }

    pub(super) fn finish(self) -> Vec<MetricOverview> {
        let (from, width) = (self.from, self.width);
        self.by_metric
            .into_iter()
            .filter_map(|(name, (latest, buckets))| {
                Some(MetricOverview {
                    name,
                    latest: latest?,
                    series: buckets
                        .into_iter()
                        .map(|(b, (sum, min, max, n))| SeriesPoint {
                            ts: from + b * width,
                            mean: sum / f64::from(n),
                            min,
                            max,
                        })
                        .collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_min_mean_max_and_the_latest_value() {
        let r = |ts: i64, t: f64| ReadingView {
            id: ts.to_string(),
            ts,
            metrics: BTreeMap::from([("t".to_owned(), t)]),
        };
        let mut b = Buckets::new(0, 100, 2);
        for reading in [r(99, 7.0), r(60, 5.0), r(10, 3.0), r(0, 1.0)] {
            b.add(&reading);
        }
        let m = b.finish();
        assert_eq!(m[0].latest, (99, 7.0));
        assert_eq!(m[0].series.len(), 2);
        assert_eq!(m[0].series[0].mean, 2.0);
        assert_eq!((m[0].series[1].min, m[0].series[1].max), (5.0, 7.0));
        assert_eq!(m[0].series[1].ts, 50);
    }
}
