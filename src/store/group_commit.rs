//! SQLite write transactions, committed in groups. SQLite has one writer at a time, and most of
//! a small write transaction's cost is its commit (the WAL frames of every page it touched, the
//! lock hand-over, a hop to a blocking thread). So one thread runs every write: it takes all the
//! writes queued since its last commit, runs each inside its own savepoint of one transaction
//! (a write that fails rolls back to its savepoint alone, exactly as its own transaction would
//! have), commits once, and only then answers each caller. A caller never sees a result that
//! was not committed: if the commit fails, every write of the group gets the error.
//!
//! A group of one write (every write when the load is light) runs without a savepoint: the
//! transaction holds that write alone, so if it fails the transaction is rolled back instead,
//! to the same effect. That spares SQLite copying each page the write touches into a
//! statement journal, and parsing `SAVEPOINT` and `RELEASE`.
//!
//! The thread also keeps the replay memory (`replay.rs`): the jti values a group adds are
//! forgotten again with whatever of the group does not commit.
//!
//! PostgreSQL has real concurrent writers and keeps one transaction per write.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::R2D2Connection;

use super::connection::PooledConnection;
use super::replay::Writer;
use super::{DbConnection, Inner, StoreError};

/// Most writes committed together; the rest wait for the next commit.
const MAX_GROUP: usize = 256;

/// What a write hands back after running: called with the group's commit outcome, it answers
/// the caller.
pub(super) type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write to run inside the group's transaction: in a savepoint of its own ([`Run::Savepoint`])
/// or, alone in its group, straight in the transaction ([`Run::Alone`]).
pub(super) type Job = Box<dyn FnOnce(&mut DbConnection, &mut Writer, Run) -> Ran + Send>;

/// How a write runs in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// Among others: inside its own savepoint.
    Savepoint,
    /// The group's only write: without a savepoint.
    Alone,
}

/// What running a write left to do.
pub(super) enum Ran {
    /// Its changes (if any) belong in the commit.
    Keep(Deliver),
    /// It failed alone in its group: roll the transaction back. The flag says whether its
    /// error retires the connection ([`StoreError::retires_connection`]).
    RollBack(Deliver, bool),
    /// The database refused a statement the write's savepoint could not contain; the
    /// transaction must not go on.
    Broken(Deliver, StoreError),
}

/// Starts the writer thread; it ends when the store (the sending side) is dropped.
pub(super) fn spawn(inner: &Arc<Inner>, queue: Receiver<Job>) {
    let store: Weak<Inner> = Arc::downgrade(inner);
    let started = std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(&store, &queue));
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the SQLite writer thread");
    }
}

/// The channel writes are queued on.
pub(super) fn channel() -> (Sender<Job>, Receiver<Job>) {
    std::sync::mpsc::channel()
}

fn run(store: &Weak<Inner>, queue: &Receiver<Job>) {
    let mut carried: Vec<Job> = Vec::new();
    // The writer's own connection, outside the pool. SQLite drops a connection's whole page
    // cache when another connection changed the database since its last transaction; this one
    // is the only writer, so its cache stays warm from one group to the next.
    let mut own: Option<PooledConnection> = None;
    let mut replay = match store.upgrade() {
        Some(inner) => Writer::new(Arc::clone(&inner.lock)),
        None => return,
    };
    loop {
        if carried.is_empty() {
            match queue.recv() {
                Ok(job) => carried.push(job),
                Err(_) => return,
            }
        }
        while carried.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => carried.push(job),
                Err(_) => break,
            }
        }
        let Some(inner) = store.upgrade() else {
            return;
        };
        let jobs = std::mem::take(&mut carried);
        carried = commit_group(&inner, &mut own, &mut replay, jobs);
    }
}

/// Starts the group's transaction with `BEGIN IMMEDIATE`: it takes SQLite's write lock at once
/// (waiting up to the busy timeout while another process writes, e.g. a `pairgate` command).
/// A deferred `BEGIN` would start as a read if the first write's first statement reads (the
/// client check does), and SQLite refuses to upgrade a read snapshot that another process has
/// written past: "database is locked", at once, with no waiting. The writes' own
/// `transaction()` calls then nest as savepoints, as diesel tracks the depth.
fn begin_immediate(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        // The writer thread exists for SQLite only.
        DbConnection::Pg(_) => Err(diesel::result::Error::BrokenTransactionManager),
    }
}

/// How a group's transaction ended.
enum Committed {
    Yes,
    RolledBack,
    Unknown(diesel::result::Error),
}

/// Runs `jobs` in one transaction and answers them; returns the jobs that did not get to run
/// (after a statement the transaction could not survive), for the next group.
fn commit_group(
    inner: &Inner,
    own: &mut Option<PooledConnection>,
    replay: &mut Writer,
    jobs: Vec<Job>,
) -> Vec<Job> {
    // The checkpoint thread holds this lock to restart the WAL with no write in progress.
    let _writer = inner.sqlite_writer.blocking_lock();
    replay.check_schema(inner.schema.load(Ordering::Relaxed));
    let Some(pooled) = writer_connection(inner, own, jobs.len()) else {
        // The jobs are dropped unrun; each caller is told its write was not committed.
        return Vec::new();
    };
    let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let mut retire_connection = false;
    let mut left: Vec<Job> = Vec::new();
    let run = if jobs.len() == 1 {
        Run::Alone
    } else {
        Run::Savepoint
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let conn = &mut pooled.conn;
        begin_immediate(conn)?;
        type Manager = <DbConnection as Connection>::TransactionManager;
        let mut jobs = jobs.into_iter();
        for job in jobs.by_ref() {
            match job(conn, &mut *replay, run) {
                Ran::Keep(deliver) => delivers.push(deliver),
                Ran::RollBack(deliver, retire) => {
                    // The group's only write failed: nothing of the transaction is kept.
                    delivers.push(deliver);
                    retire_connection |= retire;
                    return match Manager::rollback_transaction(conn) {
                        Ok(()) => Ok(Committed::RolledBack),
                        Err(e) => Ok(Committed::Unknown(e)),
                    };
                }
                Ran::Broken(deliver, err) => {
                    // The savepoint could not contain it: answer this write with its error and
                    // give the group's others a fresh transaction.
                    tracing::warn!(
                        error = %err,
                        "a write's savepoint failed; its group ends there"
                    );
                    retire_connection |= err.retires_connection();
                    deliver(Err(err));
                    break;
                }
            }
        }
        left.extend(jobs);
        Manager::commit_transaction(conn)
            .inspect_err(|_| {
                let _ = Manager::rollback_transaction(conn);
            })
            .map(|()| Committed::Yes)
    }));
    if let Ok(Ok(Committed::Yes)) = &outcome {
        inner.meters.group_commit_size.record(delivers.len() as f64);
    }
    settle(own, replay, outcome, delivers, retire_connection, left)
}

/// The writer's own connection, opened if it has none; `None` when SQLite cannot be opened.
fn writer_connection<'a>(
    inner: &Inner,
    own: &'a mut Option<PooledConnection>,
    writes: usize,
) -> Option<&'a mut PooledConnection> {
    if own.is_none() {
        match inner.spec.connect_writer() {
            Ok(conn) => *own = Some(conn),
            Err(e) => {
                tracing::warn!(
                    error = %StoreError::Unavailable(e.to_string()),
                    writes,
                    "no SQLite connection for a write group"
                );
                return None;
            }
        }
    }
    own.as_mut()
}

/// Brings the replay memory in line with what the group's transaction became, answers every
/// write that ran, and returns the jobs left for the next group.
fn settle(
    own: &mut Option<PooledConnection>,
    replay: &mut Writer,
    outcome: std::thread::Result<diesel::QueryResult<Committed>>,
    delivers: Vec<Deliver>,
    mut retire_connection: bool,
    left: Vec<Job>,
) -> Vec<Job> {
    match &outcome {
        Ok(Ok(Committed::Yes)) => replay.committed(),
        Ok(Ok(Committed::RolledBack)) => replay.rolled_back(),
        // Whatever the database kept, the memory loads it again.
        _ => replay.reload(),
    }
    let committed = match outcome {
        Ok(Ok(Committed::Yes)) => Ok(()),
        Ok(Ok(Committed::RolledBack)) => {
            retire(own, retire_connection);
            // As a savepoint's rollback would have been: silent, and the write that failed
            // answers with its own error, whatever it is handed here.
            for deliver in delivers {
                deliver(Err(StoreError::Other("rolled back".into())));
            }
            return left;
        }
        Ok(Ok(Committed::Unknown(e))) => {
            // The rollback itself failed: the transaction's state is unknown, so the
            // connection goes.
            *own = None;
            Err(StoreError::from(e))
        }
        Ok(Err(e)) => {
            // The database refused to begin or commit (disk full, read-only file, I/O error).
            let err = StoreError::from(e);
            retire_connection |= err.retires_connection();
            Err(err)
        }
        Err(_) => {
            // A write panicked: the transaction's state is unknown, so the connection goes.
            *own = None;
            Err(StoreError::Other(
                "a write panicked; its group was not committed".into(),
            ))
        }
    };
    retire(own, retire_connection);
    if let Err(e) = &committed {
        tracing::warn!(error = %e, writes = delivers.len(), "SQLite write group not committed");
    }
    for deliver in delivers {
        deliver(committed.clone());
    }
    left
}

/// Closes the writer's connection when a fault may belong to it, or when diesel no longer
/// trusts its transaction state; the next group opens a new one, which sees the database as it
/// is by then (a connection opened on a read-only file stays read-only, for one).
fn retire(own: &mut Option<PooledConnection>, fault: bool) {
    if fault || own.as_mut().is_some_and(|c| c.conn.is_broken()) {
        *own = None;
    }
}
