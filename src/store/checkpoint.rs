//! SQLite WAL checkpoints off the write path. By default SQLite checkpoints on the connection
//! that commits, once the WAL passes 1,000 pages, and the checkpoint's fsyncs then stall that
//! commit (and every write queued behind SQLite's single writer) for as long as the disk takes.
//! Connections here are opened with auto-checkpointing off, and this thread checkpoints instead,
//! a few times a second, for as long as the store exists:
//!
//! 1. a `PASSIVE` checkpoint without any lock copies what is committed so far into the database
//!    file (the bulk of the work and the fsyncs; writers carry on meanwhile);
//! 2. when the WAL has grown past [`RESTART_FRAMES`], the same again while holding the store's
//!    SQLite writer lock, which now only has the last few commits to copy: the WAL is then fully
//!    checkpointed with no write in progress, so the next write starts it over from the
//!    beginning instead of growing it forever.
//!
//! A checkpoint fsyncs the WAL, then the database file, and the locked pass's fsyncs were most of
//! the time writes were held (150-350 ms under a telemetry load): they flushed every WAL frame
//! written since the last pass, tens of MB. So before taking the lock, this thread flushes both
//! files itself (fsync on its own descriptors flushes the same dirty pages) and runs a few more
//! unlocked passes: the locked pass's fsyncs then only cover the last few milliseconds of
//! commits (held ~5 ms at 500 uploads/s, down from 150-350 ms).
//!
//! Durability is unchanged: a commit is in the WAL before it is acknowledged.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sql_types::Integer;

use super::{Inner, StoreError};

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(200);
/// WAL frames (pages) beyond which the WAL is made to start over: 64 MiB of 4 KiB pages.
const RESTART_FRAMES: i32 = 16_384;

/// Unlocked flush-and-copy rounds before the locked pass, at most.
const CATCH_UP_ROUNDS: usize = 4;
/// A round this short means the WAL is nearly caught up.
const CAUGHT_UP: Duration = Duration::from_millis(10);

#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
}

/// Starts the checkpoint thread; it ends when the store is dropped.
pub(super) fn spawn(inner: &Arc<Inner>) {
    let store: Weak<Inner> = Arc::downgrade(inner);
    let started = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                let Some(inner) = store.upgrade() else {
                    return;
                };
                if let Err(e) = checkpoint(&inner) {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
                }
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the SQLite checkpoint thread");
    }
}

fn passive(inner: &Inner) -> Result<i32, StoreError> {
    inner.with_connection(|conn| {
        let rows: Vec<Checkpointed> =
            diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").load(conn)?;
        Ok(rows.first().map_or(0, |r| r.log))
    })
}

/// Flushes the WAL and the database file to disk (errors are left for SQLite's own fsyncs to
/// report).
fn flush_files(db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for file in [Path::new(&wal), db] {
        if let Ok(f) = std::fs::File::open(file) {
            let _ = f.sync_data();
        }
    }
}

fn checkpoint(inner: &Inner) -> Result<(), StoreError> {
    let frames = passive(inner)?;
    if frames > RESTART_FRAMES {
        if let Some(db) = inner.spec.sqlite_path() {
            // Each round has only what was committed during the one before to copy and flush;
            // a few rounds leave milliseconds of commits for the locked pass.
            for _ in 0..CATCH_UP_ROUNDS {
                let round = std::time::Instant::now();
                flush_files(db);
                passive(inner)?;
                if round.elapsed() < CAUGHT_UP {
                    break;
                }
            }
            flush_files(db);
        }
        // Outside any runtime: this thread may block on the writer lock.
        let started = std::time::Instant::now();
        let _writer = inner.sqlite_writer.blocking_lock();
        let waited = started.elapsed();
        passive(inner)?;
        tracing::debug!(
            frames,
            waited_ms = waited.as_secs_f64() * 1000.0,
            held_ms = (started.elapsed() - waited).as_secs_f64() * 1000.0,
            "WAL checkpointed to the end with writes held"
        );
    }
    Ok(())
}
