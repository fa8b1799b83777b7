//! What a scenario measures: each request's latency and outcome, and the CPU time the server's
//! and the load generator's threads spent on it.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Latencies and outcomes of one scenario.
#[derive(Default)]
pub(super) struct Tally {
    latencies: Vec<Duration>,
    outcomes: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one request: its latency and its outcome's label.
    pub(super) fn count(&mut self, latency: Duration, label: String) {
        self.latencies.push(latency);
        *self.outcomes.entry(label).or_default() += 1;
    }

    /// The tallies of a scenario's tasks, once they all ended, as one.
    pub(super) async fn gather(tasks: Vec<JoinHandle<Tally>>) -> Tally {
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await.unwrap());
        }
        total
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }

    /// Prints the scenario's line and returns its row of the summary.
    pub(super) fn report(mut self, name: &str, elapsed: Duration, cpu: CpuSince) -> Row {
        self.latencies.sort();
        let n = self.latencies.len();
        let used = cpu.per_request(n);
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        let row = Row {
            name: name.to_owned(),
            rate: n as f64 / elapsed.as_secs_f64(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            server_us: used.server,
            postgres_us: used.postgres,
            failures: self
                .outcomes
                .iter()
                .filter(|(label, _)| !label.starts_with("200") && !label.contains("pending"))
                .map(|(_, n)| n)
                .sum(),
        };
        println!(
            "{name:<44} {n:>8} req  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
             p99.9 {:>6.2} ms  CPU/req: server {:.0} us (SQLite writer {:.0}), PostgreSQL {:.0} \
             us, load generator {:.0} us  {:?}",
            row.rate,
            row.p50_ms,
            row.p99_ms,
            pct(0.999),
            used.server,
            used.writer,
            used.postgres,
            used.loadgen,
            self.outcomes
        );
        row
    }
}

/// One scenario's figures, for the summary table.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub name: String,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU µs per request of the server's threads.
    pub server_us: f64,
    /// CPU µs per request of PostgreSQL's processes (0 on SQLite).
    pub postgres_us: f64,
    /// Answers other than 200 and `authorization_pending`.
    pub failures: u64,
}

impl Row {
    /// pairgate's CPU and the database's, per request.
    pub fn all_in_us(&self) -> f64 {
        self.server_us + self.postgres_us
    }
}

/// Whether the server runs on PostgreSQL, whose processes' CPU then counts with each request.
pub(super) static POSTGRES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Prefix of the load generator's thread names; every other thread of the process is the server's.
pub(super) const LOADGEN: &str = "loadgen";

/// CPU time (user + system) so far, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Used {
    /// This process's threads other than the load generator's.
    server: f64,
    /// The load generator's threads.
    loadgen: f64,
    /// The server's SQLite writer thread alone (part of `server`).
    writer: f64,
    /// Every PostgreSQL process of the machine (run nothing else on it while measuring).
    postgres: f64,
}

/// utime + stime of one `/proc/.../stat` file, in seconds; with `children`, also the CPU of the
/// ended children it has waited for (cutime + cstime).
fn stat_seconds(path: &std::path::Path, children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the ")" that ends the command: state is field 3, utime 14, stime 15, cutime
    // 16, cstime 17.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let which: &[usize] = if children {
        &[11, 12, 13, 14]
    } else {
        &[11, 12]
    };
    let ticks: f64 = which
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    Some(ticks / 100.0) // USER_HZ on Linux.
}

fn cpu_times() -> Used {
    let mut used = Used::default();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let Some(seconds) = stat_seconds(&task.path().join("stat"), false) else {
                continue;
            };
            if comm.starts_with(LOADGEN) {
                used.loadgen += seconds;
            } else if comm.starts_with("sqlite-writer") {
                used.writer += seconds;
            }
        }
    }
    // The process's own figure keeps the CPU of threads that have ended (the blocking pool lets
    // idle threads go, and PostgreSQL transactions run on it); the load generator's threads
    // live as long as the benchmark.
    let process = stat_seconds(std::path::Path::new("/proc/self/stat"), false).unwrap_or(0.0);
    used.server = process - used.loadgen;
    // Every PostgreSQL process's own CPU, and the postmaster's ended children's: a backend whose
    // connection closes during a scenario moves its CPU from the one sum to the other, instead
    // of taking it out of the count.
    let postgres = POSTGRES.load(std::sync::atomic::Ordering::Relaxed);
    for pid in super::pin::postgres_pids().into_iter().filter(|_| postgres) {
        let stat = format!("/proc/{pid}/stat");
        used.postgres += stat_seconds(std::path::Path::new(&stat), true).unwrap_or(0.0);
    }
    used
}

/// CPU time spent since a scenario started.
pub(super) struct CpuSince(Used);

impl CpuSince {
    pub(super) fn start() -> Self {
        Self(cpu_times())
    }

    /// Microseconds of CPU per request.
    fn per_request(&self, requests: usize) -> Used {
        let now = cpu_times();
        let n = requests.max(1) as f64;
        let us = |now: f64, then: f64| (now - then).max(0.0) * 1e6 / n;
        Used {
            server: us(now.server, self.0.server),
            loadgen: us(now.loadgen, self.0.loadgen),
            writer: us(now.writer, self.0.writer),
            postgres: us(now.postgres, self.0.postgres),
        }
    }
}
