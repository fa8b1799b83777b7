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

    pub(super) fn report(mut self, name: &str, elapsed: Duration, cpu: CpuSince) {
        self.latencies.sort();
        let n = self.latencies.len();
        let (server, loadgen, writer) = cpu.per_request(n);
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        println!(
            "{name:<44} {n:>8} req  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
             p99.9 {:>6.2} ms  CPU/req: server {server:.0} us (SQLite writer {writer:.0}), \
             load generator {loadgen:.0} us  {:?}",
            n as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            pct(0.999),
            self.outcomes
        );
    }
}

/// Prefix of the load generator's thread names; every other thread of the process is the server's.
pub(super) const LOADGEN: &str = "loadgen";

/// CPU time (user + system) of this process's threads so far: (server, load generator, the
/// server's SQLite writer thread alone).
fn cpu_times() -> (Duration, Duration, Duration) {
    let tick = 100.0; // USER_HZ on Linux.
    let mut server = 0.0;
    let mut loadgen = 0.0;
    let mut writer = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Fields after the ")" that ends the command: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        if comm.starts_with(LOADGEN) {
            loadgen += ticks / tick;
        } else {
            server += ticks / tick;
            if comm.starts_with("sqlite-writer") {
                writer += ticks / tick;
            }
        }
    }
    (
        Duration::from_secs_f64(server),
        Duration::from_secs_f64(loadgen),
        Duration::from_secs_f64(writer),
    )
}

/// CPU time spent since a scenario started.
pub(super) struct CpuSince((Duration, Duration, Duration));

impl CpuSince {
    pub(super) fn start() -> Self {
        Self(cpu_times())
    }

    /// Microseconds of CPU per request: (server, load generator, server's SQLite writer).
    /// Threads that ended during the scenario are not counted, which only the blocking pool's
    /// idle threads do.
    fn per_request(&self, requests: usize) -> (f64, f64, f64) {
        let (server, loadgen, writer) = cpu_times();
        let n = requests.max(1) as f64;
        let us = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() * 1e6 / n;
        (
            us(server, self.0.0),
            us(loadgen, self.0.1),
            us(writer, self.0.2),
        )
    }
}
