//! `pairgate erp import FILE`: the installed base, as CSV or JSON lines of devices and sales.
//! Every row is checked with the API's own rules first and bad rows are reported with their line
//! numbers; the rest is applied in batches, one transaction per batch, with the API's semantics
//! (so a second run of the same file changes nothing).
//!
//! CSV: a header row naming any of the columns `type` (`device` or `sale`), `serial`, `model`,
//! `public_jwk` (the JWK as JSON text), `rekey`, `sale_id`, `sold_at`, `customer_number`,
//! `customer_name`, `customer_kind`, `end_customer_number`, `revision`, `status`.
//! JSON lines: one object per line, `{"type": "device", "serial": …, <the PUT body>}` or
//! `{"type": "sale", "sale_id": …, <the PUT body>}`.

use serde_json::{Map, Value, json};

use super::Erp;
use super::devices::{self, DeviceChange, DeviceInput};
use super::error::{ErpError, FieldError};
use super::sales::{self, Delivery, SaleInput};
use crate::ids::DeviceSerial;
use crate::store::StoreError;

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// From the file name: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::JsonLines),
            _ => None,
        }
    }
}

/// A checked row.
#[derive(Debug, Clone)]
pub enum Record {
    Device {
        serial: DeviceSerial,
        input: DeviceInput,
    },
    Sale {
        sale_id: String,
        input: SaleInput,
    },
}

#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: u64,
    pub record: Record,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub problems: Vec<String>,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the CSV header has an unknown column {0:?}")]
    UnknownColumn(String),
    #[error("the CSV header cannot be read: {0}")]
    Header(String),
}

const CSV_COLUMNS: &[&str] = &[
    "type",
    "serial",
    "model",
    "public_jwk",
    "rekey",
    "sale_id",
    "sold_at",
    "customer_number",
    "customer_name",
    "customer_kind",
    "end_customer_number",
    "revision",
    "status",
];

/// Reads and checks every row of a file.
pub fn parse(text: &str, format: Format) -> Result<(Vec<Row>, Vec<BadRow>), FileError> {
    match format {
        Format::JsonLines => Ok(parse_json_lines(text)),
        Format::Csv => parse_csv(text),
    }
}

fn parse_json_lines(text: &str) -> (Vec<Row>, Vec<BadRow>) {
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let outcome = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(obj)) => check(obj),
            Ok(_) => Err(vec!["the line is not a JSON object".to_owned()]),
            Err(e) => Err(vec![format!("the line is not JSON ({e})")]),
        };
        push(outcome, line_no, &mut rows, &mut bad);
    }
    (rows, bad)
}

fn parse_csv(text: &str) -> Result<(Vec<Row>, Vec<BadRow>), FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| FileError::Header(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(unknown) = header.iter().find(|h| !CSV_COLUMNS.contains(&h.as_str())) {
        return Err(FileError::UnknownColumn(unknown.clone()));
    }
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let (line_no, outcome) = match record {
            Ok(record) => {
                let line_no = record.position().map_or(0, |p| line_at(text, p.byte()));
                let cells: Map<String, Value> = header
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(k, v)| (k.clone(), Value::String(v.trim().to_owned())))
                    .collect();
                if record.len() != header.len() {
                    (
                        line_no,
                        Err(vec![format!(
                            "the row has {} fields; the header has {}",
                            record.len(),
                            header.len()
                        )]),
                    )
                } else {
                    let outcome = csv_row(cells).and_then(check);
                    (
                        line_no,
                        outcome.map_err(|p| p.into_iter().map(csv_names).collect()),
                    )
                }
            }
            Err(e) => (
                e.position().map_or(0, |p| line_at(text, p.byte())),
                Err(vec![format!("the row cannot be read ({e})")]),
            ),
        };
        push(outcome, line_no, &mut rows, &mut bad);
    }
    Ok((rows, bad))
}

/// The 1-based line a record starts on, from the byte offset the csv reader gives (which, in a
/// CRLF file, can fall on the line feed ending the previous line): counting line feeds before
/// the record's first character, so LF and CRLF files count alike.
fn line_at(text: &str, byte: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while end < bytes.len() && matches!(bytes[end], b'\r' | b'\n') {
        end += 1;
    }
    let feeds = bytes[..end].iter().filter(|b| **b == b'\n').count();
    feeds as u64 + 1
}

/// A problem of a CSV row named by its CSV column rather than the API's field.
fn csv_names(problem: String) -> String {
    const COLUMNS: [(&str, &str); 4] = [
        ("sold_to.customer_number:", "customer_number:"),
        ("sold_to.name:", "customer_name:"),
        ("sold_to.kind:", "customer_kind:"),
        ("sold_to:", "customer_number, customer_name, customer_kind:"),
    ];
    for (field, column) in COLUMNS {
        if let Some(rest) = problem.strip_prefix(field) {
            return format!("{column}{rest}");
        }
    }
    problem
}

/// A CSV row in the shape of a JSON line.
fn csv_row(mut cells: Map<String, Value>) -> Result<Map<String, Value>, Vec<String>> {
    let mut take = |k: &str| cells.remove(k);
    let mut obj = Map::new();
    let kind = take("type");
    match kind.as_ref().and_then(Value::as_str) {
        Some("device") => {
            for key in ["serial", "model"] {
                if let Some(v) = take(key) {
                    obj.insert(key.into(), v);
                }
            }
            if let Some(jwk) = take("public_jwk") {
                let text = jwk.as_str().unwrap_or_default();
                let parsed = serde_json::from_str::<Value>(text)
                    .map_err(|_| vec!["public_jwk: is not JSON".to_owned()])?;
                obj.insert("public_jwk".into(), parsed);
            }
            if let Some(rekey) = take("rekey") {
                let flag = match rekey.as_str() {
                    Some("true") => json!(true),
                    Some("false") => json!(false),
                    _ => rekey,
                };
                obj.insert("rekey".into(), flag);
            }
        }
        Some("sale") => {
            for key in [
                "sale_id",
                "serial",
                "sold_at",
                "end_customer_number",
                "status",
            ] {
                if let Some(v) = take(key) {
                    obj.insert(key.into(), v);
                }
            }
            if let Some(revision) = take("revision") {
                let number = revision
                    .as_str()
                    .and_then(|r| r.parse::<i64>().ok())
                    .map_or(revision, Value::from);
                obj.insert("revision".into(), number);
            }
            let mut sold_to = Map::new();
            for (column, key) in [
                ("customer_number", "customer_number"),
                ("customer_name", "name"),
                ("customer_kind", "kind"),
            ] {
                if let Some(v) = take(column) {
                    sold_to.insert(key.into(), v);
                }
            }
            obj.insert("sold_to".into(), Value::Object(sold_to));
        }
        _ => {}
    }
    if let Some(kind) = kind {
        obj.insert("type".into(), kind);
    }
    let extra: Vec<String> = cells
        .keys()
        .map(|k| format!("{k}: is not used by this row type"))
        .collect();
    if extra.is_empty() {
        Ok(obj)
    } else {
        Err(extra)
    }
}

/// Checks one row with the API's rules.
fn check(mut obj: Map<String, Value>) -> Result<Record, Vec<String>> {
    let kind = obj.remove("type");
    let id = |obj: &mut Map<String, Value>, key: &str| match obj.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(vec![format!("{key}: must be a string")]),
        None => Err(vec![format!("{key}: is required")]),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("device") => {
            let serial = id(&mut obj, "serial")?;
            DeviceInput::parse(&serial, &Value::Object(obj))
                .map(|input| Record::Device {
                    serial: serial.into(),
                    input,
                })
                .map_err(problems)
        }
        Some("sale") => {
            let sale_id = id(&mut obj, "sale_id")?;
            SaleInput::parse(&sale_id, &Value::Object(obj))
                .map(|input| Record::Sale { sale_id, input })
                .map_err(problems)
        }
        _ => Err(vec!["type: must be device or sale".to_owned()]),
    }
}

fn problems(err: ErpError) -> Vec<String> {
    match err {
        ErpError::Validation(errors) => errors.iter().map(describe).collect(),
        ErpError::Conflict(conflict) => {
            vec![format!("{}: {}", conflict.title(), conflict.detail())]
        }
        ErpError::Store(e) => vec![e.to_string()],
    }
}

fn describe(e: &FieldError) -> String {
    let field = e.field();
    if field.is_empty() {
        e.detail.clone()
    } else {
        format!("{field}: {}", e.detail)
    }
}

fn push(
    outcome: Result<Record, Vec<String>>,
    line: u64,
    rows: &mut Vec<Row>,
    bad: &mut Vec<BadRow>,
) {
    match outcome {
        Ok(record) => rows.push(Row { line, record }),
        Err(problems) => bad.push(BadRow { line, problems }),
    }
}

/// How many rows of one kind did what.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub devices: Counts,
    pub sales: Counts,
    /// Rows refused while applying (conflicts), with their line numbers.
    pub refused: Vec<BadRow>,
}

enum Applied {
    Device(DeviceChange),
    Sale { created: bool, applied: bool },
}

impl Erp {
    /// Applies checked rows in batches of `batch_size`, one transaction each; `progress` is told
    /// how many rows each committed batch held. A store failure stops the import: the batches
    /// before it stay committed, and running the file again finishes the job.
    pub async fn import(
        &self,
        rows: Vec<Row>,
        batch_size: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Row> = rows.by_ref().take(batch_size.max(1)).collect();
            let size = batch.len() as u64;
            let now = self.now_ms();
            let results = self
                .store
                .write(move |tx| {
                    let mut results = Vec::with_capacity(batch.len());
                    for row in &batch {
                        let applied = match &row.record {
                            Record::Device { serial, input } => {
                                devices::apply(tx, now, "cli", serial, input)
                                    .map(|o| Applied::Device(o.change))
                            }
                            Record::Sale { sale_id, input } => {
                                sales::apply(tx, now, "cli", sale_id, Delivery::Put(input)).map(
                                    |o| Applied::Sale {
                                        created: o.created,
                                        applied: o.applied,
                                    },
                                )
                            }
                        };
                        match applied {
                            Ok(a) => results.push((row.line, Ok(a))),
                            // Refusals are decided before anything is written: the batch goes on.
                            Err(ErpError::Store(e)) => return Err(e),
                            Err(refusal) => results.push((row.line, Err(problems(refusal)))),
                        }
                    }
                    Ok::<_, StoreError>(results)
                })
                .await?;
            for (line, result) in results {
                match result {
                    Ok(Applied::Device(change)) => count(
                        &mut report.devices,
                        change == DeviceChange::Created,
                        change != DeviceChange::Unchanged,
                    ),
                    Ok(Applied::Sale { created, applied }) => {
                        count(&mut report.sales, created, applied)
                    }
                    Err(problems) => report.refused.push(BadRow { line, problems }),
                }
            }
            progress(size);
        }
        Ok(report)
    }
}

fn count(counts: &mut Counts, created: bool, changed: bool) {
    if created {
        counts.created += 1;
    } else if changed {
        counts.changed += 1;
    } else {
        counts.unchanged += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_checked_with_line_numbers() {
        let text = "type,sale_id,serial,sold_at,\
                    customer_number,customer_name,customer_kind,revision\n\
                    sale,S-1,SN-1,2026-01-02T03:04:05Z,C-1,Acme,end_customer,1\n\
                    sale,S-2,SN-2,yesterday,C-1,Acme,wholesale,x\n\
                    gadget,S-3\n";
        let (rows, bad) = parse(text, Format::Csv).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].problems.len(), 3, "{:?}", bad[0]);
        assert_eq!(bad[1].line, 4);
    }

    #[test]
    fn unknown_csv_columns_stop_the_import() {
        assert!(matches!(
            parse("type,colour\n", Format::Csv),
            Err(FileError::UnknownColumn(c)) if c == "colour"
        ));
    }
}
