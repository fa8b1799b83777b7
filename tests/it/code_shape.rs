//! The size targets for the code itself: no Rust source file over [`MAX_FILE_LINES`] lines and
//! no function over [`MAX_FN_LINES`] lines, in `src/`, `crates/`, `benches/` and `examples/`.
//!
//! A function is measured from its `fn` line to the closing brace at the same indent, which
//! rustfmt guarantees; a body-less trait item is not a function here.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_FILE_LINES: usize = 500;
/// The longest a function may be, signature and closing brace included.
const MAX_FN_LINES: usize = 80;

/// Files (`path`) and functions (`path::name`) still over the limits while they are being split.
/// This list may only shrink: an entry that no longer exceeds its limit fails the test too, so
/// remove it as soon as its file or function is brought under the limit.
const KNOWN_EXCEPTIONS: &[&str] = &[];

/// The directories scanned, relative to the repository root.
const ROOTS: &[&str] = &["src", "crates", "benches", "examples"];

#[test]
fn no_file_or_function_exceeds_the_size_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ROOTS {
        collect_rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no Rust sources found under {ROOTS:?}");

    let mut offenders = BTreeSet::new();
    let mut report = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read a source file");
        let rel = file
            .strip_prefix(root)
            .expect("a scanned file lies under the root")
            .to_string_lossy()
            .replace('\\', "/");
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            report.push(format!("{rel}: {} lines", lines.len()));
            offenders.insert(rel.clone());
        }
        for (name, len) in long_functions(&lines) {
            report.push(format!("{rel}::{name}: {len} lines"));
            offenders.insert(format!("{rel}::{name}"));
        }
    }

    let allowed: BTreeSet<String> = KNOWN_EXCEPTIONS.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = offenders.difference(&allowed).collect();
    let stale: Vec<&String> = allowed.difference(&offenders).collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "size targets: files <= {MAX_FILE_LINES} lines, functions <= {MAX_FN_LINES} lines\n\
         over the limit and not excepted: {new:#?}\n\
         excepted but no longer over the limit (remove them from KNOWN_EXCEPTIONS): {stale:#?}\n\
         all measurements over the limit:\n{}",
        report.join("\n")
    );
}

/// Appends every `.rs` file below `dir` (none if `dir` does not exist).
fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The name and length of every function in `lines` longer than [`MAX_FN_LINES`].
fn long_functions(lines: &[&str]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else {
            continue;
        };
        if let Some(len) = fn_length(lines, start)
            && len > MAX_FN_LINES
        {
            found.push((name, len));
        }
    }
    found
}

/// The function name declared on `line`, if the line starts a function item.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    if rest.starts_with("//") {
        return None;
    }
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scoped) => scoped.split_once(')')?.1,
            None => after,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" ", "extern "] {
        if let Some(after) = rest.strip_prefix(qualifier) {
            rest = after.trim_start();
        }
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Lines from the `fn` line at `start` to its closing brace, or `None` for a declaration
/// without a body.
fn fn_length(lines: &[&str], start: usize) -> Option<usize> {
    let indent = &lines[start][..lines[start].len() - lines[start].trim_start().len()];
    let closing = format!("{indent}}}");
    for (offset, line) in lines[start..].iter().enumerate() {
        let code = line.split("//").next().unwrap_or_default().trim_end();
        if let Some(open) = code.find('{') {
            let body = &code[open..];
            // A body that opens and closes on one line.
            if body.ends_with('}') && body.matches('{').count() == body.matches('}').count() {
                return Some(offset + 1);
            }
            let end = lines[start + offset + 1..]
                .iter()
                .position(|l| l.trim_end() == closing)?;
            return Some(offset + end + 2);
        }
        if code.ends_with(';') {
            return None;
        }
    }
    None
}
