//! The module graph of a source tree: which module each file is, where each path it names leads
//! (through `pub use` re-exports), the edges between sibling modules, and the cycles among them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::scan::{self, FileRefs};

/// A module path below the crate root (`["oauth", "grants"]`); the root is empty.
pub type ModPath = Vec<String>;

/// One reference from a module to a sibling (or to a sibling of an ancestor).
#[derive(Debug, Clone)]
pub struct Edge {
    /// The common parent of both ends (empty for top-level modules).
    pub parent: ModPath,
    pub from: String,
    pub to: String,
    /// The full module that holds the reference, and the full module it names.
    pub source: ModPath,
    pub target: ModPath,
    pub site: String,
}

/// An external crate named where the layer rules say it does not belong.
#[derive(Debug, Clone)]
pub struct CrateUse {
    pub module: ModPath,
    pub krate: String,
    pub site: String,
}

/// Every library module of a crate and what it refers to.
pub struct Graph {
    files: BTreeMap<ModPath, (String, FileRefs)>,
}

impl Graph {
    /// Reads `src/` (skipping `main.rs` and `bin/`, which are separate crates, and test-only
    /// files).
    pub fn read(src: &Path) -> std::io::Result<Self> {
        let mut found = Vec::new();
        walk(src, &mut found)?;
        let mut files = BTreeMap::new();
        for path in found {
            let relative = path.strip_prefix(src).unwrap_or(&path);
            let Some(module) = module_of(relative) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)?;
            let shown = format!("src/{}", relative.display());
            files.insert(module, (shown, scan::scan(&text)));
        }
        let test_only: Vec<ModPath> = files
            .iter()
            .flat_map(|(m, (_, refs))| refs.test_modules.iter().map(|t| child(m, t)))
            .collect();
        files.retain(|m, _| !test_only.iter().any(|t| m.starts_with(t)));
        Ok(Self { files })
    }

    fn is_module(&self, path: &[String]) -> bool {
        self.files.contains_key(path)
    }

    /// The module a path names, following re-exports; `None` for paths outside the crate.
    fn resolve(&self, from: &ModPath, segments: &[String], depth: usize) -> Option<ModPath> {
        let (mut module, rest) = match segments.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &segments[1..]),
            Some("super") => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = from.len().checked_sub(ups)?;
                (from[..base].to_vec(), &segments[ups..])
            }
            Some("self") => (from.clone(), &segments[1..]),
            Some(first) if self.is_module(&child(from, first)) => (from.clone(), segments),
            _ => return None,
        };
        for (n, segment) in rest.iter().enumerate() {
            let next = child(&module, segment);
            if self.is_module(&next) {
                module = next;
                continue;
            }
            let reexport = self.files.get(&module).and_then(|(_, refs)| {
                refs.reexports
                    .iter()
                    .find(|r| r.name == *segment && r.path.len() > 1)
            });
            if let Some(r) = reexport
                && depth < 8
            {
                let mut through = r.path.clone();
                through.extend(rest[n + 1..].iter().cloned());
                return self.resolve(&module, &through, depth + 1).or(Some(module));
            }
            break;
        }
        Some(module)
    }

    /// Every reference between two modules that are not one inside the other.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        let mut seen = BTreeSet::new();
        for (source, (file, refs)) in &self.files {
            for path in &refs.paths {
                let Some(target) = self.resolve(source, &path.segments, 0) else {
                    continue;
                };
                let k = source
                    .iter()
                    .zip(&target)
                    .take_while(|(a, b)| a == b)
                    .count();
                let apart = k < source.len() && k < target.len();
                if apart && seen.insert((file, path.line, target.clone())) {
                    edges.push(Edge {
                        parent: source[..k].to_vec(),
                        from: source[k].clone(),
                        to: target[k].clone(),
                        source: source.clone(),
                        target,
                        site: format!("{file}:{}", path.line),
                    });
                }
            }
        }
        edges
    }

    /// Paths into the external crates the layer rules place (actix, diesel and its kin).
    pub fn crate_uses(&self) -> Vec<CrateUse> {
        let mut uses = Vec::new();
        for (module, (file, refs)) in &self.files {
            for path in &refs.paths {
                if let Some(first) = path.segments.first().filter(|s| scan::is_layered_crate(s)) {
                    uses.push(CrateUse {
                        module: module.clone(),
                        krate: first.clone(),
                        site: format!("{file}:{}", path.line),
                    });
                }
            }
        }
        uses
    }

    /// The top-level modules.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.files
            .keys()
            .filter(|m| m.len() == 1)
            .map(|m| m[0].clone())
            .collect()
    }
}

fn child(parent: &[String], name: &str) -> ModPath {
    let mut path = parent.to_vec();
    path.push(name.to_owned());
    path
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `oauth/grants/mod.rs` → `oauth::grants`; `lib.rs` → the root; binaries → `None`.
fn module_of(relative: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    if parts.first().is_some_and(|p| p == "bin") || (parts.is_empty() && file == "main.rs") {
        return None;
    }
    match file.strip_suffix(".rs")? {
        "lib" if parts.is_empty() => {}
        "mod" => {}
        stem => parts.push(stem.to_owned()),
    }
    Some(parts)
}

/// Every elementary cycle among the siblings under each parent, each listed once, starting at
/// its smallest module.
pub fn cycles(edges: &[Edge]) -> Vec<(ModPath, Vec<String>)> {
    let mut by_parent: BTreeMap<&ModPath, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for e in edges {
        by_parent
            .entry(&e.parent)
            .or_default()
            .entry(&e.from)
            .or_default()
            .insert(&e.to);
    }
    let mut found = Vec::new();
    for (parent, graph) in by_parent {
        for &start in graph.keys() {
            let mut stack = vec![start];
            walk_cycles(&graph, start, &mut stack, &mut |cycle| {
                found.push((
                    parent.clone(),
                    cycle.iter().map(|s| s.to_string()).collect(),
                ));
            });
        }
    }
    found
}

/// Depth-first search for paths back to `start` through modules greater than `start`, so each
/// cycle is reported from its smallest member only.
fn walk_cycles<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    start: &'a str,
    stack: &mut Vec<&'a str>,
    report: &mut dyn FnMut(&[&'a str]),
) {
    let Some(last) = stack.last().copied() else {
        return;
    };
    for &next in graph.get(last).into_iter().flatten() {
        if next == start {
            report(stack);
        } else if next > start && !stack.contains(&next) {
            stack.push(next);
            walk_cycles(graph, start, stack, report);
            stack.pop();
        }
    }
}
