//! `PUT /api/erp/v1/models/{model}`: the ERP says, per device model, what each metric is: the
//! label people read, its unit, and optionally the decimals to show and the range the value can
//! take. The body replaces what was known of the model; the same body again changes nothing.
//! A metric the ERP never described is shown by its key, with no unit.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ErpError, FieldError, Location};
use super::input::{self, Fields};
use crate::events::{self, Action, Event, Subject};
use crate::store::Tx;
use crate::store::device_page::{self as stored, ModelMetric};

/// The members a body may have.
pub const FIELDS: &[&str] = &["metrics"];
/// The members a metric may have.
pub const METRIC_FIELDS: &[&str] = &["key", "label", "unit", "decimals", "min", "max"];
/// Metrics one model may describe.
pub const MAX_METRICS: usize = 100;
/// Decimals a value may be shown with.
pub const MAX_DECIMALS: i64 = 6;

/// The body of a PUT as the ERP sends it, for the API description: [`ModelInput::parse`] reads
/// the members one by one, so that one answer names every problem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "metrics": [
        { "key": "flow", "label": "Flow", "unit": "m³/h", "decimals": 1, "min": 0, "max": 40 },
        { "key": "temperature", "label": "Water temperature", "unit": "°C" }
    ]
})))]
pub struct ModelPut {
    /// Every metric of the model (at most 100, each key once); replaces what was known.
    #[schema(max_items = 100)]
    pub metrics: Vec<MetricPut>,
}

/// One metric of a model.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricPut {
    /// The metric's key in the device's readings.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
    pub key: String,
    /// What people read, e.g. "Flow".
    #[schema(min_length = 1, max_length = 100)]
    pub label: String,
    /// The unit, e.g. "m³/h"; absent for a count or a ratio.
    #[schema(min_length = 1, max_length = 20)]
    pub unit: Option<String>,
    /// Decimals to show, 0 to 6.
    #[schema(minimum = 0, maximum = 6)]
    pub decimals: Option<u8>,
    /// The lowest value the metric can take (the chart's axis starts there).
    pub min: Option<f64>,
    /// The highest value the metric can take; above `min`.
    pub max: Option<f64>,
}

/// A checked request body.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub metrics: Vec<MetricInput>,
}

/// A checked metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInput {
    pub key: String,
    pub label: String,
    pub unit: Option<String>,
    pub decimals: Option<i32>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

fn metric_key(text: &str) -> Result<(), &'static str> {
    if crate::telemetry::batch::valid_metric_name(text) {
        Ok(())
    } else {
        Err("must be 1–64 characters of A–Z, a–z, 0–9, '_', '.' or '-', starting with a letter")
    }
}

fn label(text: &str) -> Result<(), &'static str> {
    let ok = !text.trim().is_empty()
        && text.chars().count() <= 100
        && !text.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err("must be 1–100 printable characters")
    }
}

fn unit(text: &str) -> Result<(), &'static str> {
    let ok = !text.trim().is_empty()
        && text.chars().count() <= 20
        && !text.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err("must be 1–20 printable characters")
    }
}

/// An optional finite number.
fn bound(f: &Fields<'_>, key: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    let value = f.get(key)?;
    match value.as_f64().filter(|v| v.is_finite()) {
        Some(v) => Some(v),
        None => {
            errors.push(FieldError::body(f.pointer(key), "must be a number"));
            None
        }
    }
}

fn metric(f: &Fields<'_>, errors: &mut Vec<FieldError>) -> Option<MetricInput> {
    let key = f.text("key", metric_key, errors);
    let label = f.text("label", label, errors);
    let unit = f.optional_text("unit", unit, errors);
    let decimals = f.get("decimals").and_then(|v| {
        let d = v.as_i64().filter(|d| (0..=MAX_DECIMALS).contains(d));
        if d.is_none() {
            errors.push(FieldError::body(
                f.pointer("decimals"),
                format!("must be an integer from 0 to {MAX_DECIMALS}"),
            ));
        }
        d.and_then(|d| i32::try_from(d).ok())
    });
    let (min, max) = (bound(f, "min", errors), bound(f, "max", errors));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo >= hi
    {
        errors.push(FieldError::body(
            f.pointer("max"),
            "must be greater than min",
        ));
    }
    Some(MetricInput {
        key: key?,
        label: label?,
        unit,
        decimals,
        min,
        max,
    })
}

impl ModelInput {
    /// Reads a body; every problem is reported.
    pub fn parse(model: &str, body: &Value) -> Result<Self, ErpError> {
        let mut errors = Vec::new();
        if input::model(model).is_err() {
            errors.push(FieldError {
                location: Location::Path("model"),
                detail: "must be 1–128 printable characters".into(),
            });
        }
        let mut metrics = Vec::new();
        if let Some(f) = Fields::of(body, "", FIELDS, &mut errors)
            && let Some(list) = f.require("metrics", &mut errors)
        {
            match list.as_array() {
                None => errors.push(FieldError::body("/metrics", "must be an array")),
                Some(items) if items.len() > MAX_METRICS => errors.push(FieldError::body(
                    "/metrics",
                    format!("may describe {MAX_METRICS} metrics at most"),
                )),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let prefix = format!("/metrics/{i}");
                        let Some(m) = Fields::of(item, &prefix, METRIC_FIELDS, &mut errors)
                            .and_then(|f| metric(&f, &mut errors))
                        else {
                            continue;
                        };
                        if metrics.iter().any(|o: &MetricInput| o.key == m.key) {
                            errors.push(FieldError::body(
                                format!("{prefix}/key"),
                                "names a metric described before in this body",
                            ));
                        }
                        metrics.push(m);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { metrics })
        } else {
            Err(ErpError::Validation(errors))
        }
    }
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelChange {
    /// Nothing was known of the model before.
    Created,
    Unchanged,
    Updated,
}

/// The answer to a PUT.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelOutcome {
    pub model: String,
    /// The metrics now described.
    pub metrics: usize,
    pub change: ModelChange,
}

/// Replaces the metadata of `model` inside the caller's transaction, with its audit row.
pub fn apply(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    model: &str,
    input: &ModelInput,
) -> Result<ModelOutcome, ErpError> {
    let mut rows: Vec<ModelMetric> = input
        .metrics
        .iter()
        .map(|m| ModelMetric {
            model: model.to_owned(),
            metric: m.key.clone(),
            label: m.label.clone(),
            unit: m.unit.clone(),
            decimals: m.decimals,
            min_value: m.min,
            max_value: m.max,
            updated_at: now_ms,
        })
        .collect();
    rows.sort_by(|a, b| a.metric.cmp(&b.metric));
    let known = stored::model_metrics(tx, model)?;
    let outcome = |change| ModelOutcome {
        model: model.to_owned(),
        metrics: rows.len(),
        change,
    };
    if known.len() == rows.len() && known.iter().zip(&rows).all(|(a, b)| a.same_as(b)) {
        return Ok(outcome(ModelChange::Unchanged));
    }
    stored::replace_model_metrics(tx, model, &rows)?;
    let keys: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    events::record(
        tx,
        now_ms,
        Event::new(
            Action::ErpModelMetricsSet,
            actor,
            Subject::Model(model.to_owned()),
        )
        .detail(json!({ "metrics": keys })),
    )?;
    Ok(outcome(if known.is_empty() {
        ModelChange::Created
    } else {
        ModelChange::Updated
    }))
}
