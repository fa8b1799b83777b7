//! The dependency rules of `src/` (ARCHITECTURE.md), checked from the source text: no cycle
//! between top-level modules or between the submodules of one module, no import that runs back up
//! the layers, actix only in `http` (and the CLI that starts its runtime), diesel only in `store`.
//! A reference is a `use` or a `crate::…`/`super::…` path in code outside `#[cfg(test)]`, followed
//! through `pub use` re-exports. Std only, so it also builds alone with `rustc --test` against
//! any checkout's `src/` (run from the checkout).
//!
//! `cargo test --test it architecture -- --nocapture` prints the figures.

mod graph;
mod scan;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use graph::{Edge, Graph};

/// Top-level modules by layer, lowest first. A module may import from its own layer and those
/// below it, never from one above; within a layer the cycle rule keeps imports one way.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "clock", "config", "crypto", "ids", "logging", "meters", "verifier",
        ],
    ),
    ("store", &["store"]),
    ("events", &["events"]),
    (
        "domain",
        &[
            "accounts",
            "devices",
            "erp",
            "mail",
            "maintenance",
            "oauth",
            "pairing",
            "telemetry",
        ],
    ),
    ("services", &["app"]),
    ("http", &["http"]),
    ("entry points", &["cli", "simulator"]),
];

/// Which top-level modules may name an external crate that belongs to one layer.
fn crate_allowed(krate: &str, module: &str) -> bool {
    if krate.starts_with("actix") {
        matches!(module, "http" | "cli")
    } else {
        module == "store"
    }
}

fn source_root() -> PathBuf {
    let root = option_env!("CARGO_MANIFEST_DIR").unwrap_or(".");
    Path::new(root).join("src")
}

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, members))| members.contains(&module))
        .map(|(rank, (name, _))| (rank, *name))
}

/// Every cycle, with the references that make each of its steps.
fn cycle_report(edges: &[Edge]) -> (usize, String) {
    let cycles = graph::cycles(edges);
    let mut out = String::new();
    for (parent, members) in &cycles {
        let scope = if parent.is_empty() {
            "src".to_owned()
        } else {
            parent.join("::")
        };
        let mut ring = members.clone();
        ring.push(members[0].clone());
        let _ = writeln!(out, "cycle in {scope}: {}", ring.join(" → "));
        for step in ring.windows(2) {
            let sites: Vec<&Edge> = edges
                .iter()
                .filter(|e| e.parent == *parent && e.from == step[0] && e.to == step[1])
                .collect();
            let _ = writeln!(
                out,
                "  {} → {}: {} ({} → {}){}",
                step[0],
                step[1],
                sites[0].site,
                sites[0].source.join("::"),
                sites[0].target.join("::"),
                more(sites.len()),
            );
        }
    }
    (cycles.len(), out)
}

fn more(count: usize) -> String {
    if count > 1 {
        format!(", and {} more", count - 1)
    } else {
        String::new()
    }
}

/// Every import from a lower layer into a higher one, every module in no layer, and every
/// misplaced external crate.
fn layer_report(graph: &Graph, edges: &[Edge]) -> (usize, String) {
    let mut out = String::new();
    let mut count = 0;
    for module in graph.top_level() {
        if layer_of(&module).is_none() {
            count += 1;
            let _ = writeln!(out, "src/{module} is in no layer: add it to LAYERS");
        }
    }
    let mut upward: BTreeMap<(&str, &str), Vec<&Edge>> = BTreeMap::new();
    for e in edges.iter().filter(|e| e.parent.is_empty()) {
        if let (Some((from, _)), Some((to, _))) = (layer_of(&e.from), layer_of(&e.to))
            && from < to
        {
            upward.entry((&e.from, &e.to)).or_default().push(e);
        }
    }
    for ((from, to), sites) in upward {
        count += sites.len();
        let (from_layer, to_layer) = (layer_of(from).map(|l| l.1), layer_of(to).map(|l| l.1));
        let _ = writeln!(
            out,
            "upward: {from} ({}) imports {to} ({})",
            from_layer.unwrap_or("?"),
            to_layer.unwrap_or("?")
        );
        for e in sites {
            let _ = writeln!(out, "  {}: {}", e.site, e.target.join("::"));
        }
    }
    for used in graph.crate_uses() {
        let top = used.module.first().map_or("", String::as_str);
        if !crate_allowed(&used.krate, top) {
            count += 1;
            let _ = writeln!(
                out,
                "{} outside its layer: {} in {top}",
                used.krate, used.site
            );
        }
    }
    (count, out)
}

#[test]
fn source_modules_form_no_cycles() {
    let graph = Graph::read(&source_root()).expect("src/ is readable");
    let edges = graph.edges();
    let (count, report) = cycle_report(&edges);
    println!("cycles between src/ modules: {count}\n{report}");
    assert_eq!(
        count, 0,
        "modules depend on each other in circles:\n{report}"
    );
}

#[test]
fn imports_run_down_the_layers() {
    let graph = Graph::read(&source_root()).expect("src/ is readable");
    let (count, report) = layer_report(&graph, &graph.edges());
    println!("imports against the layers: {count}\n{report}");
    assert_eq!(count, 0, "imports run back up the layers:\n{report}");
}

/// A source tree in a fresh temporary directory, removed on drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("pairgate-arch-{}", std::process::id()));
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Self(dir)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_check_names_cycles_upward_imports_and_misplaced_crates() {
    let fixture = Fixture::new(&[
        (
            "lib.rs",
            "pub mod store;\npub mod oauth;\npub mod erp;\npub mod http;\n",
        ),
        ("store/mod.rs", "pub mod audit;\nuse crate::http::Server;\n"),
        ("store/audit.rs", "pub fn append() {}\n"),
        (
            "oauth/mod.rs",
            "pub mod token;\npub mod grants;\npub use token::Minter;\n",
        ),
        (
            "oauth/token.rs",
            "pub struct Minter;\nuse super::grants::device_code::poll;\n",
        ),
        ("oauth/grants/mod.rs", "pub mod device_code;\n"),
        (
            "oauth/grants/device_code.rs",
            "// crate::erp::x is a comment\nuse super::super::Minter;\n\
             fn poll() { crate::erp::record(); }\n\
             #[cfg(test)]\nmod tests { use crate::http::x; }\n",
        ),
        (
            "erp/mod.rs",
            "pub fn record() { let _ = diesel::insert_into; }\nuse crate::oauth::Minter;\n",
        ),
        (
            "http/mod.rs",
            "pub struct Server;\nuse crate::{oauth, erp::record};\n",
        ),
    ]);
    let graph = Graph::read(&fixture.0).unwrap();
    let edges = graph.edges();
    let (cycles, report) = cycle_report(&edges);
    assert_eq!(cycles, 2, "{report}");
    assert!(
        report.contains("cycle in src: erp → oauth → erp"),
        "{report}"
    );
    assert!(report.contains("erp → oauth: src/erp/mod.rs:2"), "{report}");
    assert!(
        report.contains("oauth → erp: src/oauth/grants/device_code.rs:3"),
        "{report}"
    );
    assert!(
        report.contains("cycle in oauth: grants → token → grants"),
        "{report}"
    );
    // Through the re-export in `oauth/mod.rs` to the module that defines `Minter`.
    assert!(
        report.contains("(oauth::grants::device_code → oauth::token)"),
        "{report}"
    );

    let (violations, report) = layer_report(&graph, &edges);
    assert_eq!(violations, 2, "{report}");
    assert!(
        report.contains("upward: store (store) imports http (http)\n  src/store/mod.rs:2: http"),
        "{report}"
    );
    assert!(
        report.contains("diesel outside its layer: src/erp/mod.rs:1 in erp"),
        "{report}"
    );
}
