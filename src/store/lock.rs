//! One server per SQLite database file. The server's writer thread alone decides which jti
//! values are new (`replay.rs`), so a second server on the same file would keep a second memory
//! and let replays through. `pairgate serve` therefore takes a lock file,
//! `<database>-replay.lock` (`File::try_lock`), and refuses to start while another process holds
//! it.
//!
//! The lock is named after the database's canonical path, so a symbolic link, a relative path or
//! one with `..` names the same lock as the file itself. A hard link is a second name that no
//! path resolves to the first, and SQLite keeps its WAL beside the name a connection opened, so
//! two names are two WALs over one file (SQLite's "How To Corrupt" §2.5): a database file with
//! more than one hard link is refused.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;

/// The lock of one database, shared by the store and its writer thread; held, once claimed,
/// until both are gone.
pub(super) struct ServerLock {
    /// The database file as configured; none for a database without a file.
    database: Option<PathBuf>,
    held: Mutex<Option<File>>,
}

impl ServerLock {
    pub(super) fn new(database: Option<&Path>) -> Self {
        Self {
            database: database.map(Path::to_path_buf),
            held: Mutex::new(None),
        }
    }

    /// Makes this process the only server of the database, or says which lock another process
    /// holds. Claiming again is a no-op.
    pub(super) fn claim(&self) -> Result<(), StoreError> {
        let Some(database) = &self.database else {
            return Ok(());
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let canonical = canonical_database(database).map_err(|e| {
            StoreError::Unavailable(format!("cannot resolve {}: {e}", database.display()))
        })?;
        refuse_hard_links(&canonical)?;
        let path = lock_path(&canonical);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot open the lock file {}: {e}",
                    path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
                "another pairgate server uses this SQLite database (it holds {}); one server per \
                 SQLite file, or PostgreSQL for several",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

/// The database file's canonical path: every symbolic link and `..` resolved. A file that does
/// not exist yet is named by its directory's canonical path and its own name.
fn canonical_database(database: &Path) -> io::Result<PathBuf> {
    match std::fs::canonicalize(database) {
        Ok(path) => Ok(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let name = database
                .file_name()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
            let dir = database
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            Ok(std::fs::canonicalize(dir)?.join(name))
        }
        Err(e) => Err(e),
    }
}

fn refuse_hard_links(database: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(database) {
        Ok(meta) if meta.nlink() > 1 => Err(StoreError::Unavailable(format!(
            "the SQLite file {} has {} hard links: SQLite keeps a WAL beside each name the file \
             is opened by, so a second name could let a second server (or its WAL) in; keep one \
             name (a symbolic link is fine)",
            database.display(),
            meta.nlink()
        ))),
        _ => Ok(()),
    }
}

fn lock_path(canonical: &Path) -> PathBuf {
    let mut name = canonical.as_os_str().to_owned();
    name.push("-replay.lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_to_one_file_names_one_lock() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // Before the file exists: its directory is resolved.
        let missing = canonical_database(&data.join("../data/pairgate.db")).unwrap();
        std::fs::write(data.join("pairgate.db"), b"").unwrap();
        let file = canonical_database(&data.join("pairgate.db")).unwrap();
        assert_eq!(missing, file);
        std::os::unix::fs::symlink(data.join("pairgate.db"), dir.path().join("link.db")).unwrap();
        assert_eq!(
            canonical_database(&dir.path().join("link.db")).unwrap(),
            file
        );
    }
}
