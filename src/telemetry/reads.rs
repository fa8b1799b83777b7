//! Reading telemetry, for people: every read goes through the person's device access
//! ([`crate::accounts::Accounts::visible_devices`]) and shows only what the device uploaded while
//! it belonged to the person's tenant. Two shapes: raw readings over a range (the JSON API), and
//! an overview per metric (latest value and a bucketed series) for the portal's device page.

use super::batch::{parse_time, valid_metric_name};
use super::buckets::{Buckets, MetricOverview, ReadingView};
use super::{Telemetry, TelemetryError};
use crate::accounts::{Session, Stage};
use crate::ids::{DeviceSerial, TenantId};
use crate::store::telemetry::{self as stored, RangeQuery, ReadingRecord};

/// Readings returned at most by one read.
pub const MAX_READ_LIMIT: i64 = 10_000;
const DEFAULT_READ_LIMIT: i64 = 1_000;
/// The range a read covers when `from` is not given: the day before `to`.
const DEFAULT_RANGE_MS: i64 = 24 * 3_600_000;

/// A read as asked for (query parameters, unparsed).
#[derive(Debug, Clone, Default)]
pub struct ReadQuery {
    pub metric: Option<String>,
    /// Unix ms or RFC 3339; inclusive. Default: a day before `to`.
    pub from: Option<String>,
    /// Unix ms or RFC 3339; exclusive. Default: now (plus the accepted clock drift).
    pub to: Option<String>,
    pub limit: Option<String>,
}

/// The answer to a read: oldest first.
#[derive(Debug, Clone)]
pub struct ReadingsPage {
    pub serial: DeviceSerial,
    pub from: i64,
    pub to: i64,
    pub readings: Vec<ReadingView>,
    /// More readings exist in the range than `limit`; ask again from the last `ts`.
    pub truncated: bool,
}

/// What the device page shows.
#[derive(Debug, Clone)]
pub struct DeviceOverview {
    pub serial: DeviceSerial,
    /// The window: `to` is now.
    pub from: i64,
    pub to: i64,
    /// By metric name.
    pub metrics: Vec<MetricOverview>,
    /// The window held more readings than an overview reads; the oldest are left out.
    pub truncated: bool,
}

impl Telemetry {
    /// Readings of one device the session's user may see, over a time range.
    pub async fn readings(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        query: &ReadQuery,
    ) -> Result<ReadingsPage, TelemetryError> {
        let metric = match query.metric.as_deref() {
            Some(m) if !valid_metric_name(m) => {
                return Err(TelemetryError::InvalidQuery("metric is not a metric name"));
            }
            m => m.map(str::to_owned),
        };
        let (from, to) = self.range(query.from.as_deref(), query.to.as_deref())?;
        let limit = match query.limit.as_deref() {
            None => DEFAULT_READ_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_READ_LIMIT).contains(l))
                .ok_or(TelemetryError::InvalidQuery(
                    "limit must be a whole number from 1 to 10000",
                ))?,
        };
        let tenant_id = self.visible_tenant(session, serial).await?;
        let serial_owned = serial.to_owned();
        // One more than asked, to know whether the range holds more. With a metric filter the
        // store cannot count for us, so read the limit's worth of readings that carry it.
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
                        limit: if metric.is_some() {
                            MAX_READ_LIMIT + 1
                        } else {
                            limit + 1
                        },
                        newest_first: false,
                    },
                )
            })
            .await?;
        let scanned_all = records.len() as i64 <= MAX_READ_LIMIT;
        let mut readings: Vec<ReadingView> = records
            .into_iter()
            .map(view)
            .filter_map(|mut r| match query.metric.as_deref() {
                None => Some(r),
                Some(m) => {
                    r.metrics.retain(|name, _| name == m);
                    (!r.metrics.is_empty()).then_some(r)
                }
            })
            .collect();
        let truncated = readings.len() as i64 > limit || (query.metric.is_some() && !scanned_all);
        readings.truncate(limit as usize);
        Ok(ReadingsPage {
            serial: serial.to_owned(),
            from,
            to,
            readings,
            truncated,
        })
    }

    /// The device page's data: per metric, the latest value and a series of at most `points`
    /// buckets over the `window_ms` before now.
    pub async fn device_overview(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        window_ms: i64,
        points: usize,
    ) -> Result<DeviceOverview, TelemetryError> {
        let tenant_id = self.visible_tenant(session, serial).await?;
        // The window ends now; readings a fast device clock put slightly ahead (as far as an
        // upload may) are read too and count in the last bucket.
        let now = self.now_ms();
        let from = now - window_ms.max(1);
        let to = now + self.limits.max_future_ms + 1;
        let serial_owned = serial.to_owned();
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
                        limit: MAX_READ_LIMIT + 1,
                        newest_first: true,
                    },
                )
            })
            .await?;
        let truncated = records.len() as i64 > MAX_READ_LIMIT;
        let mut readings: Vec<ReadingView> = records
            .into_iter()
            .take(MAX_READ_LIMIT as usize)
            .map(view)
            .collect();
        readings.reverse();
        Ok(DeviceOverview {
            serial: serial.to_owned(),
            from,
            to: now,
            metrics: overview(&readings, from, now, points.max(1)),
            truncated,
        })
    }

    /// `from` and `to` with their defaults; `from < to`.
    fn range(&self, from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), TelemetryError> {
        let to = match to {
            Some(t) => parse_time(t).ok_or(TelemetryError::InvalidQuery(
                "to must be Unix milliseconds or an RFC 3339 date-time",
            ))?,
            None => self.now_ms() + self.limits.max_future_ms + 1,
        };
        let from = match from {
            Some(f) => parse_time(f).ok_or(TelemetryError::InvalidQuery(
                "from must be Unix milliseconds or an RFC 3339 date-time",
            ))?,
            None => to.saturating_sub(DEFAULT_RANGE_MS),
        };
        if from >= to {
            return Err(TelemetryError::InvalidQuery("from must be before to"));
        }
        Ok((from, to))
    }

    /// The access filter: the tenant whose data on `serial` this person may read.
    pub(super) async fn visible_tenant(
        &self,
        session: &Session,
        serial: &DeviceSerial,
    ) -> Result<TenantId, TelemetryError> {
        if session.stage != Stage::Full {
            return Err(TelemetryError::SignInRequired);
        }
        if session.must_enrol_totp() {
            return Err(TelemetryError::Forbidden);
        }
        let tenant_id = session.user.tenant_id.ok_or(TelemetryError::Forbidden)?;
        let visible = self.accounts.visible_devices(session).await?;
        if !visible.iter().any(|d| d.serial == *serial) {
            return Err(TelemetryError::NotFound);
        }
        Ok(tenant_id)
    }
}

pub(super) fn view(r: ReadingRecord) -> ReadingView {
    // Stored metrics were written by this module from validated numbers.
    let metrics = serde_json::from_str(&r.metrics).unwrap_or_default();
    ReadingView {
        id: r.reading_id,
        ts: r.ts,
        metrics,
    }
}

/// Per metric: the newest value, and mean/min/max per bucket (`points` equal buckets).
fn overview(readings: &[ReadingView], from: i64, to: i64, points: usize) -> Vec<MetricOverview> {
    let mut buckets = Buckets::new(from, to, points);
    for r in readings {
        buckets.add(r);
    }
    buckets.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn overview_buckets_and_keeps_the_latest_value() {
        let r = |ts: i64, t: f64| ReadingView {
            id: ts.to_string(),
            ts,
            metrics: BTreeMap::from([("t".to_owned(), t)]),
        };
        let m = overview(&[r(0, 1.0), r(10, 3.0), r(60, 5.0), r(99, 7.0)], 0, 100, 2);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].latest, (99, 7.0));
        assert_eq!(m[0].series.len(), 2);
        assert_eq!(m[0].series[0].mean, 2.0);
        assert_eq!((m[0].series[1].min, m[0].series[1].max), (5.0, 7.0));
        assert_eq!(m[0].series[1].ts, 50);
    }
}
