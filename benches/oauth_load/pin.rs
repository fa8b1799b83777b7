//! `--pin`: the server's threads (and PostgreSQL's processes) on one core, the load generator's on
//! the other, so that neither's CPU time is taken from the other and each is read apart. The
//! crate forbids `unsafe`, so affinity is set with util-linux's `taskset`.

use std::process::Command;

/// The core the server, its SQLite writer and PostgreSQL run on.
pub(super) const SERVER_CORE: &str = "0";
/// The core the load generator runs on.
pub(super) const LOADGEN_CORE: &str = "1";

/// Moves one task (a process's main thread, or any thread by its id) to `cores`; threads it
/// starts afterwards inherit them.
pub(super) fn pin(tid: u32, cores: &str) {
    let status = Command::new("taskset")
        .args(["-p", "-c", cores, &tid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(status.success(), "taskset -p -c {cores} {tid}");
}

/// The calling thread's id.
pub(super) fn this_thread() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// The ids of this machine's PostgreSQL processes (the postmaster, its backends and helpers).
pub(super) fn postgres_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "postgres")
        })
        .collect()
}

/// Puts every PostgreSQL process on `cores`, the postmaster included (new backends inherit it).
/// A process that ends meanwhile is skipped.
pub(super) fn pin_postgres(cores: &str) {
    for pid in postgres_pids() {
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", cores, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Every core of the machine, as taskset reads them (not `available_parallelism`, which counts
/// only the cores this thread may run on).
pub(super) fn all_cores() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_or_else(|_| "0-1".to_owned(), |s| s.trim().to_owned())
}
