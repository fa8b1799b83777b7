//! An upload's body: `{"readings": [{"id": …, "ts": …, "metrics": {name: number, …}}, …]}`,
//! checked against the limits before anything is stored. A batch is all or nothing: one bad
//! reading refuses the whole batch (retrying it cannot help, so devices drop it), which keeps
//! "accepted + duplicates = readings sent" true for every acknowledged upload.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

use super::error::BatchProblem;
use crate::config::TelemetrySettings;

/// Longest reading id and metric name, in bytes.
pub const MAX_ID_LEN: usize = 64;
pub const MAX_METRIC_NAME_LEN: usize = 64;

/// The limits a batch is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_readings: usize,
    pub max_metrics: usize,
    pub max_age_ms: i64,
    pub max_future_ms: i64,
}

impl Limits {
    pub fn from_settings(s: &TelemetrySettings) -> Self {
        Self {
            max_readings: s.max_batch_readings.get() as usize,
            max_metrics: s.max_metrics_per_reading.get() as usize,
            max_age_ms: i64::from(s.max_reading_age_secs.get()) * 1000,
            max_future_ms: i64::from(s.max_reading_future_secs) * 1000,
        }
    }
}

/// A validated reading, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: String,
    /// Unix ms.
    pub ts: i64,
    /// The metrics as a JSON object, names sorted.
    pub metrics: String,
}

/// The body of an upload; every reading is checked by [`parse`].
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TelemetryBatch)]
pub struct BatchIn {
    /// At most `telemetry.max_batch_readings` (100 by default); one bad reading refuses the
    /// whole batch.
    #[schema(min_items = 1)]
    readings: Vec<ReadingIn>,
}

/// One reading as the device sends it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reading)]
struct ReadingIn {
    /// Chosen by the device, unique for the device for good: a reading whose id the device
    /// already uploaded is counted as a duplicate and not stored again.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._:~-]{1,64}$")]
    id: Value,
    /// When it was measured (described by [`timestamp_schema`]).
    #[schema(schema_with = timestamp_schema)]
    ts: Value,
    /// Metric name to value (described by [`metrics_schema`]).
    #[schema(schema_with = metrics_schema)]
    metrics: Value,
}

/// `ts`: an RFC 3339 date-time or Unix milliseconds.
fn timestamp_schema() -> RefOr<Schema> {
    OneOfBuilder::new()
        .description(Some(
            "When it was measured: at most telemetry.max_reading_age_secs (7 days) old and \
             telemetry.max_reading_future_secs (5 minutes) ahead",
        ))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("Unix milliseconds")),
        )
        .into()
}

/// `metrics`: names as [`valid_metric_name`] accepts them, to numbers.
fn metrics_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Metric name to value, at most telemetry.max_metrics_per_reading (32 by default)",
        ))
        .min_properties(Some(1))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z][A-Za-z0-9_.-]{0,63}$")),
        ))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Number)))
        .into()
}

/// Parses and checks a batch at `now_ms`.
pub fn parse(body: &[u8], limits: &Limits, now_ms: i64) -> Result<Vec<Reading>, BatchProblem> {
    let batch: BatchIn = serde_json::from_slice(body).map_err(|_| {
        BatchProblem::body(
            "the body must be {\"readings\": [{\"id\", \"ts\", \"metrics\"}, …]} and nothing else",
        )
    })?;
    if batch.readings.is_empty() {
        return Err(BatchProblem::body("a batch needs at least one reading"));
    }
    if batch.readings.len() > limits.max_readings {
        return Err(BatchProblem::body(
            "too many readings in one batch (see telemetry.max_batch_readings)",
        ));
    }
    let mut seen = HashSet::with_capacity(batch.readings.len());
    let mut out = Vec::with_capacity(batch.readings.len());
    for (i, r) in batch.readings.into_iter().enumerate() {
        let reading =
            check_reading(r, limits, now_ms).map_err(|reason| BatchProblem::at(i, reason))?;
        if !seen.insert(reading.id.clone()) {
            return Err(BatchProblem::at(i, "this id appears twice in the batch"));
        }
        out.push(reading);
    }
    Ok(out)
}

fn check_reading(r: ReadingIn, limits: &Limits, now_ms: i64) -> Result<Reading, &'static str> {
    let id = match r.id {
        Value::String(id) if valid_id(&id) => id,
        _ => {
            return Err("id must be a string of 1–64 characters A–Z a–z 0–9 . _ : ~ -");
        }
    };
    let ts = match &r.ts {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
    .ok_or("ts must be Unix milliseconds or an RFC 3339 date-time")?;
    if ts < now_ms - limits.max_age_ms {
        return Err("ts is older than telemetry.max_reading_age_secs allows");
    }
    if ts > now_ms + limits.max_future_ms {
        return Err("ts is in the future");
    }
    let Value::Object(metrics) = r.metrics else {
        return Err("metrics must be an object of name: number");
    };
    if metrics.is_empty() || metrics.len() > limits.max_metrics {
        return Err("metrics must hold 1 to telemetry.max_metrics_per_reading entries");
    }
    let mut clean = Map::new();
    for (name, value) in metrics {
        if !valid_metric_name(&name) {
            return Err(
                "a metric name must be 1–64 characters A–Z a–z 0–9 _ . -, starting with a letter",
            );
        }
        match value {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {
                clean.insert(name, Value::Number(n));
            }
            _ => return Err("a metric value must be a number"),
        }
    }
    Ok(Reading {
        id,
        ts,
        metrics: Value::Object(clean).to_string(),
    })
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_~-".contains(&b))
}

/// Metric names appear in URLs (`?metric=`), JSON keys and charts: keep them plain.
pub fn valid_metric_name(name: &str) -> bool {
    (1..=MAX_METRIC_NAME_LEN).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// An RFC 3339 date-time in Unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A time given as Unix milliseconds or RFC 3339 (query parameters).
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| parse_rfc3339(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn limits() -> Limits {
        Limits {
            max_readings: 3,
            max_metrics: 2,
            max_age_ms: 3_600_000,
            max_future_ms: 60_000,
        }
    }

    fn parse_json(v: Value) -> Result<Vec<Reading>, BatchProblem> {
        parse(v.to_string().as_bytes(), &limits(), NOW)
    }

    #[test]
    fn accepts_both_time_forms_and_sorts_metric_names() {
        // NOW is 2027-01-15T08:00:00Z.
        let out = parse_json(serde_json::json!({"readings": [
            {"id": "a-1", "ts": NOW, "metrics": {"t": 21.5, "h": 40}},
            {"id": "a-2", "ts": "2027-01-15T08:00:00Z", "metrics": {"t": -3}},
        ]}))
        .unwrap();
        assert_eq!(out[0].metrics, r#"{"h":40,"t":21.5}"#);
        assert_eq!(out[1].ts, NOW);
        let too_old = parse_json(serde_json::json!({"readings": [
            {"id": "a-1", "ts": NOW, "metrics": {"t": 21.5}},
            {"id": "a-2", "ts": "2026-01-01T00:00:00Z", "metrics": {"t": -3}},
        ]}))
        .unwrap_err();
        assert_eq!(too_old.reading, Some(1));
        assert!(too_old.reason.contains("older"));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
    }

    #[test]
    fn refuses_what_the_limits_forbid() {
        let one = |r: Value| parse_json(serde_json::json!({ "readings": [r] })).unwrap_err();
        assert_eq!(
            one(serde_json::json!({"id": "", "ts": NOW, "metrics": {"t": 1}})).reading,
            Some(0)
        );
        assert!(
            one(serde_json::json!({"id": 5, "ts": NOW, "metrics": {"t": 1}}))
                .reason
                .contains("id")
        );
        assert!(
            one(serde_json::json!({"id": "x", "ts": NOW + 61_000, "metrics": {"t": 1}}))
                .reason
                .contains("future")
        );
        assert!(
            one(serde_json::json!({"id": "x", "ts": NOW, "metrics": {}}))
                .reason
                .contains("metrics")
        );
        assert!(
            one(serde_json::json!({"id": "x", "ts": NOW, "metrics": {"a": 1, "b": 2, "c": 3}}))
                .reason
                .contains("metrics")
        );
        assert!(
            one(serde_json::json!({"id": "x", "ts": NOW, "metrics": {"1a": 1}}))
                .reason
                .contains("name")
        );
        assert!(
            one(serde_json::json!({"id": "x", "ts": NOW, "metrics": {"t": "1"}}))
                .reason
                .contains("number")
        );
        let dup = parse_json(serde_json::json!({"readings": [
            {"id": "x", "ts": NOW, "metrics": {"t": 1}},
            {"id": "x", "ts": NOW, "metrics": {"t": 2}},
        ]}))
        .unwrap_err();
        assert_eq!(dup.reading, Some(1));
        assert!(parse(b"[]", &limits(), NOW).is_err());
        assert!(parse_json(serde_json::json!({"readings": []})).is_err());
    }
}
