//! The summary: one row per operation (pairgate's CPU, the database's, the two together, and the
//! floor beside it), then what a device-day costs and how many devices a core carries.

use crate::measure::Row;
use crate::upload::READINGS;

/// The operations, in the order they run and print.
pub(super) const OPERATIONS: [&str; 5] = ["upload", "refresh", "poll", "authorize", "cc"];

/// A device's day in the cost model: an upload a minute, a refresh every ten minutes.
const UPLOADS_PER_DAY: f64 = 1440.0;
const REFRESHES_PER_DAY: f64 = 144.0;

/// Prints the table (Markdown, for docs/benchmarks.md) and the device-day.
pub(super) fn print(rows: &[(&str, bool, Row)]) {
    println!();
    println!(
        "| operation | throughput | p50 / p99 | pairgate CPU | database CPU | all-in | floor |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (op, _, row) in rows.iter().filter(|(_, f, _)| !f) {
        let floor = rows
            .iter()
            .find(|(o, f, r)| o == op && *f && same_variant(&r.name, &row.name))
            .map_or("-".to_owned(), |(_, _, f)| format!("{:.0} µs", f.server_us));
        println!(
            "| {} | {:.0}/s | {:.2} / {:.2} ms | {:.0} µs | {:.0} µs | {:.0} µs | {floor} |{}",
            row.name,
            row.rate,
            row.p50_ms,
            row.p99_ms,
            row.server_us,
            row.postgres_us,
            row.all_in_us(),
            if row.failures > 0 {
                format!(" {} failed", row.failures)
            } else {
                String::new()
            },
        );
    }
    let all_in = |op: &str| {
        rows.iter()
            .find(|(o, f, _)| *o == op && !f)
            .map(|(_, _, r)| r.all_in_us())
    };
    if let (Some(upload), Some(refresh)) = (all_in("upload"), all_in("refresh")) {
        let day = (UPLOADS_PER_DAY * upload + REFRESHES_PER_DAY * refresh) / 1e6;
        let per_core = 86_400.0 / day;
        println!();
        println!(
            "device-day ({UPLOADS_PER_DAY} uploads of {READINGS} readings + {REFRESHES_PER_DAY} \
             refreshes): {day:.3} CPU-seconds all-in; {per_core:.0} devices per core; \
             1 M devices: {:.1} cores; 10 M devices: {:.0} cores",
            1e6 / per_core,
            1e7 / per_core
        );
    }
}

/// Two rows measure the same variant of an operation (the client_credentials scenario has two).
fn same_variant(a: &str, b: &str) -> bool {
    a.split(" (").next() == b.split(" (").next()
}
