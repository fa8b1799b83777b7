//! The files a command may create on first use, the SQLite database and the master key file:
//! each one it did create is named once, by its absolute path, so the operator knows what to
//! back up.

use std::path::PathBuf;

use crate::config::{DatabaseUrl, Settings};

/// The files that did not exist before the command ran, with what each one is.
pub(super) struct NewFiles(Vec<(&'static str, PathBuf)>);

impl NewFiles {
    /// Notes which of the command's files are missing now.
    pub(super) fn before(settings: &Settings) -> Self {
        let mut candidates = Vec::new();
        if let DatabaseUrl::Sqlite(path) = &settings.database.url {
            candidates.push(("the SQLite database", path.clone()));
        }
        if settings.keys.master_key.expose().trim().is_empty() {
            let what = "the master key file (back it up with the database)";
            candidates.push((what, settings.keys.master_key_file.clone()));
        }
        Self(
            candidates
                .into_iter()
                .filter(|(_, p)| !p.exists())
                .collect(),
        )
    }

    /// Prints the absolute path of each file that exists now.
    pub(super) fn report(&self) {
        for (what, path) in &self.0 {
            if let Ok(absolute) = std::fs::canonicalize(path) {
                eprintln!("pairgate: created {what}: {}", absolute.display());
            }
        }
    }
}
