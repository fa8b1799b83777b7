//! A device's readings as CSV: a header row (the time in RFC 3339 UTC, then each metric's label
//! with its unit), one row per reading, empty where a reading lacks a metric; quoting by the
//! `csv` crate (RFC 4180).

use chrono::{DateTime, SecondsFormat};

use crate::telemetry::{Export, MetricsOfModel};

/// The header cell of a metric: `Flow (m³/h)`, or the label alone.
fn heading(metas: &MetricsOfModel, key: &str) -> String {
    let meta = metas.get(key);
    match meta.unit {
        Some(unit) => format!("{} ({unit})", meta.label),
        None => meta.label,
    }
}

/// The export as CSV text.
pub fn write(export: &Export, metas: &MetricsOfModel) -> Result<String, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["time (UTC)".to_owned()];
    header.extend(export.keys.iter().map(|k| heading(metas, k)));
    out.write_record(&header)?;
    for r in &export.readings {
        let time = DateTime::from_timestamp_millis(r.ts)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default();
        let mut row = vec![time];
        row.extend(
            export
                .keys
                .iter()
                .map(|k| r.metrics.get(k).map(f64::to_string).unwrap_or_default()),
        );
        out.write_record(&row)?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::telemetry::ReadingView;

    #[test]
    fn a_header_row_then_one_row_per_reading_quoted_where_needed() {
        let export = Export {
            readings: vec![
                ReadingView {
                    id: "a".into(),
                    ts: 1_796_428_800_000,
                    metrics: BTreeMap::from([("flow".into(), 2.5), ("t,x".into(), -1.0)]),
                },
                ReadingView {
                    id: "b".into(),
                    ts: 1_796_428_860_500,
                    metrics: BTreeMap::from([("flow".into(), 3.0)]),
                },
            ],
            keys: vec!["flow".into(), "t,x".into()],
            truncated: false,
        };
        let text = write(&export, &MetricsOfModel::default()).unwrap();
        assert_eq!(
            text,
            "time (UTC),flow,\"t,x\"\n2026-12-05T00:00:00.000Z,2.5,-1\n\
             2026-12-05T00:01:00.500Z,3,\n"
        );
    }
}
