//! The `pairgate erp` commands as an operator meets them: `import` reads the file, prints every
//! bad row with its line number, shows a progress bar (indicatif, on a terminal only) while the
//! batches commit, and sums up what changed.

use super::Erp;
use crate::erp::import::{self, Format};

/// `pairgate erp import`: check, report bad rows, import the rest with a progress bar.
pub async fn import(
    erp: &Erp,
    file: &std::path::Path,
    format: Option<&str>,
    batch_size: usize,
) -> Result<(), String> {
    let format = match format {
        Some("csv") => Format::Csv,
        Some("jsonl" | "ndjson") => Format::JsonLines,
        Some(other) => return Err(format!("--format must be csv or jsonl, not {other:?}")),
        None => Format::from_path(file).ok_or(
            "cannot tell the format from the file name; pass --format csv or --format jsonl",
        )?,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (rows, bad) =
        import::parse(&text, format).map_err(|e| format!("{}: {e}", file.display()))?;
    for row in &bad {
        eprintln!("line {}: {}", row.line, row.problems.join("; "));
    }
    let total = rows.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let started = std::time::Instant::now();
    let report = erp
        .import(rows, batch_size, &|n| bar.inc(n))
        .await
        .map_err(|e| {
            format!("import stopped (committed batches stay; run it again to finish): {e}")
        })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    for row in &report.refused {
        eprintln!("line {}: {}", row.line, row.problems.join("; "));
    }
    let (d, s) = (report.devices, report.sales);
    println!(
        "devices: {} created, {} changed, {} unchanged\n\
         sales:   {} created, {} changed, {} unchanged\n\
         rows:    {total} checked rows applied in {secs:.2} s ({:.0} rows/s); {} rejected",
        d.created,
        d.changed,
        d.unchanged,
        s.created,
        s.changed,
        s.unchanged,
        total as f64 / secs.max(1e-9),
        bad.len() + report.refused.len(),
    );
    if bad.is_empty() && report.refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} rows were not imported (see the lines above); the others were",
            bad.len() + report.refused.len()
        ))
    }
}
