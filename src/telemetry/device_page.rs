//! The portal's device page: what each metric is (the ERP's per-model metadata, with a fallback),
//! the readings of any range downsampled to min/mean/max per bucket as they are read (so a month
//! of readings never sits in memory), and the readings of a range for a CSV export (bounded).

use std::collections::{BTreeMap, HashSet};

use super::buckets::Buckets;
use super::reads::view;
use super::{DeviceOverview, ReadingView, Telemetry, TelemetryError};
use crate::accounts::Session;
use crate::ids::DeviceSerial;
use crate::store::device_page as models;
use crate::store::telemetry::{self as stored, RangeQuery};

/// Readings read per query while scanning a range.
const CHUNK: i64 = 5_000;
/// Readings an overview reads at most (the newest); older ones are left out, and it says so.
pub const MAX_OVERVIEW_READINGS: usize = 200_000;
/// Readings one CSV export holds at most (the oldest of the range); the page says so.
pub const MAX_EXPORT_READINGS: usize = 100_000;

/// What a metric is, for people: the ERP's description of the device's model, or the key.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMeta {
    pub key: String,
    pub label: String,
    pub unit: Option<String>,
    pub decimals: Option<u8>,
    /// The range the value can take, when the ERP gave one.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl MetricMeta {
    /// No description known: the key as the label, no unit.
    pub fn fallback(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            label: key.to_owned(),
            unit: None,
            decimals: None,
            min: None,
            max: None,
        }
    }
}

/// The metrics of a model, by key; [`MetricsOfModel::get`] falls back to the key.
#[derive(Debug, Clone, Default)]
pub struct MetricsOfModel(BTreeMap<String, MetricMeta>);

impl MetricsOfModel {
    /// The keys of the metrics the ERP described.
    pub fn described(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> MetricMeta {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| MetricMeta::fallback(key))
    }
}

/// The readings of a range for an export, oldest first.
#[derive(Debug, Clone)]
pub struct Export {
    pub readings: Vec<ReadingView>,
    /// Every metric key of the readings, sorted.
    pub keys: Vec<String>,
    /// The range held more than [`MAX_EXPORT_READINGS`]; the newest are left out.
    pub truncated: bool,
}

impl Telemetry {
    /// What the ERP said of the metrics of `model`.
    pub async fn metrics_of_model(&self, model: &str) -> Result<MetricsOfModel, TelemetryError> {
        let model = model.to_owned();
        let rows = self
            .store
            .read(move |tx| models::model_metrics(tx, &model))
            .await?;
        Ok(MetricsOfModel(
            rows.into_iter()
                .map(|r| {
                    let meta = MetricMeta {
                        key: r.metric.clone(),
                        label: r.label,
                        unit: r.unit,
                        decimals: r.decimals.and_then(|d| u8::try_from(d).ok()),
                        min: r.min_value,
                        max: r.max_value,
                    };
                    (r.metric, meta)
                })
                .collect(),
        ))
    }

    /// Per metric, the latest value and at most `points` buckets of `[from, to)`, read through
    /// the session's device access, newest first until [`MAX_OVERVIEW_READINGS`].
    pub async fn range_overview(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        (from, to): (i64, i64),
        points: usize,
    ) -> Result<DeviceOverview, TelemetryError> {
        let points = points.max(1);
        let mut buckets = Buckets::new(from, to, points);
        // A range that ends now also reads what a fast device clock put slightly ahead (as far
        // as an upload may); it counts in the last bucket.
        let now = self.now_ms();
        let read_to = if to >= now {
            now + self.limits.max_future_ms + 1
        } else {
            to
        };
        let truncated = self
            .scan(
                session,
                serial,
                (from, read_to),
                true,
                MAX_OVERVIEW_READINGS,
                |r| buckets.add(&r),
            )
            .await?;
        Ok(DeviceOverview {
            serial: serial.clone(),
            from,
            to,
            metrics: buckets.finish(),
            truncated,
        })
    }

    /// The readings of `[from, to)` for a CSV export, oldest first, at most
    /// [`MAX_EXPORT_READINGS`].
    pub async fn export(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        range: (i64, i64),
    ) -> Result<Export, TelemetryError> {
        let mut readings = Vec::new();
        let truncated = self
            .scan(session, serial, range, false, MAX_EXPORT_READINGS, |r| {
                readings.push(r)
            })
            .await?;
        let keys: Vec<String> = readings
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(Export {
            readings,
            keys,
            truncated,
        })
    }

    /// Hands each reading of `[from, to)` to `each`, in time order, at most `cap` of them, a
    /// chunk per query; answers whether readings were left.
    async fn scan(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        (mut from, mut to): (i64, i64),
        newest_first: bool,
        cap: usize,
        mut each: impl FnMut(ReadingView),
    ) -> Result<bool, TelemetryError> {
        let tenant_id = self.visible_tenant(session, serial).await?;
        let mut seen = 0usize;
        // The readings at the edge of the last chunk: the next chunk starts at their time again
        // (readings share times), and skips them.
        let mut edge: HashSet<String> = HashSet::new();
        while from < to {
            let serial_owned = serial.clone();
            let records = self
                .store
                .read(move |tx| {
                    stored::readings(
                        tx,
                        &RangeQuery {
                            serial: &serial_owned,
                            tenant_id,
                            from,
                            to,
                            limit: CHUNK,
                            newest_first,
                        },
                    )
                })
                .await?;
            let full = records.len() as i64 == CHUNK;
            let Some(last_ts) = records.last().map(|r| r.ts) else {
                return Ok(false);
            };
            let previous = std::mem::take(&mut edge);
            let mut fresh = 0;
            for r in records {
                if r.ts == last_ts {
                    edge.insert(r.reading_id.clone());
                }
                if previous.contains(&r.reading_id) {
                    continue;
                }
                if seen == cap {
                    return Ok(true);
                }
                seen += 1;
                fresh += 1;
                each(view(r));
            }
            if !full {
                return Ok(false);
            }
            if fresh == 0 {
                // A whole chunk at one instant, all seen: step past it.
                edge.clear();
                if newest_first {
                    to = last_ts
                } else {
                    from = last_ts + 1
                }
            } else if newest_first {
                to = last_ts + 1;
            } else {
                from = last_ts;
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_metric_reads_as_its_key() {
        let m = MetricsOfModel::default().get("flow");
        assert_eq!((m.label.as_str(), m.unit), ("flow", None));
    }
}
