//! The only module that knows diesel. It owns the connection pool, runs blocking database work
//! off the async workers, and offers typed operations to the domain. Queries are written once,
//! against [`DbConnection`], and run on SQLite and PostgreSQL alike.

pub mod apps;
pub mod audit;
mod batch;
mod checkpoint;
mod connection;
pub mod device_list;
pub mod device_page;
pub mod erp;
mod error;
pub mod flows;
mod group_commit;
pub mod groups;
pub mod history;
mod ids;
pub mod inventory;
pub mod keys;
pub mod kinds;
pub mod listing;
mod lock;
pub mod mail;
pub mod migrations;
mod notify;
pub mod pairings;
mod partitions;
pub mod passkeys;
pub mod refusals;
pub mod registry;
pub mod replay;
pub mod schema;
pub mod sessions;
pub mod telemetry;
pub mod tokens;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::r2d2::{ManageConnection, Pool};
use tokio::sync::Mutex;

pub use connection::{Backend, ConnectionSpec, DbConnection};
pub use error::StoreError;

use crate::config::DatabaseSettings;
use crate::meters::Meters;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<ConnectionSpec>,
    /// How connections are opened (the SQLite writer thread opens its own).
    spec: ConnectionSpec,
    backend: Backend,
    acquire_timeout: Duration,
    /// SQLite allows one writer at a time. Write transactions queue here instead of failing with
    /// SQLITE_BUSY when a deferred transaction tries to upgrade its read snapshot to a write.
    sqlite_writer: Mutex<()>,
    /// SQLite: the queue of the thread that commits writes in groups (`group_commit.rs`).
    sqlite_writes: Option<std::sync::mpsc::Sender<group_commit::Job>>,
    /// SQLite: one server per database file (`lock.rs`); claimed by `serve`, or by the writer
    /// when it first remembers a jti.
    lock: Arc<lock::ServerLock>,
    /// Bumped by every migration run through this store: the SQLite writer then reloads what it
    /// keeps in memory from the tables (the replay memory).
    schema: AtomicU64,
    /// The context's measurements, reached by the services that hold this store.
    meters: Meters,
}

impl Store {
    /// Opens the database. The first connection is made directly, so that a wrong password, an
    /// unreachable host or an unwritable file is reported with its real cause.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        Self::open_measured(settings, Meters::noop()).await
    }

    /// [`Self::open`], recording into `meters` (the SQLite group-commit sizes); the services
    /// built on this store record through [`Self::meters`].
    pub async fn open_measured(
        settings: &DatabaseSettings,
        meters: Meters,
    ) -> Result<Self, StoreError> {
        let spec = ConnectionSpec::new(settings);
        let backend = spec.backend();
        let probe = spec.clone();
        tokio::task::spawn_blocking(move || probe.connect().map(drop))
            .await
            .map_err(|e| StoreError::Other(format!("connect task failed: {e}")))?
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pool = Pool::builder()
            .max_size(settings.pool_size.get())
            .min_idle(Some(1))
            .connection_timeout(settings.acquire_timeout())
            // Connections that saw the server go away are marked broken and dropped instead
            // (see PooledConnection); testing each one on checkout would cost a round trip.
            .test_on_check_out(false)
            .build_unchecked(spec.clone());
        let (sender, queue) = match backend {
            Backend::Sqlite => {
                let (sender, queue) = group_commit::channel();
                (Some(sender), Some(queue))
            }
            Backend::Postgres => (None, None),
        };
        let inner = Arc::new(Inner {
            lock: Arc::new(lock::ServerLock::new(spec.sqlite_path())),
            pool,
            spec,
            backend,
            acquire_timeout: settings.acquire_timeout(),
            sqlite_writer: Mutex::new(()),
            sqlite_writes: sender,
            schema: AtomicU64::new(0),
            meters,
        });
        if let Some(queue) = queue {
            checkpoint::spawn(&inner);
            group_commit::spawn(&inner, queue);
        }
        Ok(Self { inner })
    }

    /// PostgreSQL: woken whenever a signing key is added, by this instance or any other
    /// (`LISTEN`, on a connection of its own; see `notify.rs`). `None` on SQLite, where one
    /// server process adds keys and reloads its own ring.
    pub fn signing_key_rotations(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner
            .spec
            .postgres_url()
            .map(|url| notify::listen(url.to_owned(), notify::SIGNING_KEYS))
    }

    /// The measurements of the context this store belongs to.
    pub fn meters(&self) -> &Meters {
        &self.inner.meters
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let applied = self.read(|tx| migrations::run_pending(tx.conn)).await;
        self.schema_changed();
        applied
    }

    /// Makes this process the only server of a SQLite database (a lock file next to it; see
    /// `lock.rs`): its writer alone decides which jti values are new. Fails when another
    /// process holds the lock. Nothing to do on PostgreSQL. Needs no write, so a server
    /// starts (and says it is not ready) on a database it cannot write yet.
    pub async fn claim_sqlite_writer(&self) -> Result<(), StoreError> {
        self.inner.lock.claim()
    }

    fn schema_changed(&self) {
        self.inner.schema.fetch_add(1, Ordering::Relaxed);
    }

    /// Reverts every migration (tests use it to check that `down.sql` works).
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>, StoreError> {
        let reverted = self.read(|tx| migrations::revert_all(tx.conn)).await;
        self.schema_changed();
        reverted
    }

    /// Reverts the latest migration (tests check that a migration keeps the data it reshapes).
    pub async fn revert_last_migration(&self) -> Result<String, StoreError> {
        let reverted = self.read(|tx| migrations::revert_last(tx.conn)).await;
        self.schema_changed();
        reverted
    }

    /// Ok when the database takes a write: a one-row upsert, committed (on SQLite through the
    /// writer thread, like every write). A database that answers reads but cannot write (disk
    /// full, read-only, failing I/O) is not ready.
    pub async fn ping(&self, now_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| replay::probe_write(tx, now_ms)).await
    }

    /// Connections in the pool: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.inner.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, without a transaction
    /// (each statement commits by itself).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        E: StoreFailure + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner.with_connection(|conn| f(&mut Tx { conn, replay: None }))
        })
        .await
        .map_err(|e| E::from(StoreError::Other(format!("blocking task failed: {e}"))))?
    }

    /// Runs `f` with a pooled connection and no transaction, each statement committing by
    /// itself: for PostgreSQL's schema changes that refuse to run in one (detaching a partition
    /// concurrently). On SQLite every write belongs to [`Self::write`].
    pub async fn autocommit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        E: StoreFailure + Send + 'static,
        T: Send + 'static,
    {
        self.read(f).await
    }

    /// Runs `f` in a transaction: committed when `f` returns `Ok`, rolled back when it returns
    /// `Err`. Refusals that must still persist something (a `slow_down`, a revoked token family)
    /// are `Ok` outcomes, not errors.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        E: StoreFailure + Send + 'static,
        T: Send + 'static,
    {
        if let Some(queue) = &self.inner.sqlite_writes {
            return Self::write_in_group(queue, f).await;
        }
        self.read(move |tx| match in_transaction(tx.conn, None, f) {
            Ok(result) => result,
            Err((_, err)) => Err(E::from(err)),
        })
        .await
    }

    /// [`Self::write`] on SQLite: queued for the writer thread, answered after its group commits.
    async fn write_in_group<T, E, F>(
        queue: &std::sync::mpsc::Sender<group_commit::Job>,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        E: StoreFailure + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: group_commit::Job = Box::new(move |conn, replay, run| {
            let deliver = |result: Result<T, E>| -> group_commit::Deliver {
                Box::new(move |committed: Result<(), StoreError>| {
                    // What the write did counts only once it is committed; a write that failed
                    // keeps its own error.
                    let result = match (committed, result) {
                        (Err(e), Ok(_)) => Err(E::from(e)),
                        (_, result) => result,
                    };
                    let _ = answer.send(result);
                })
            };
            match run {
                // Alone in its group: a failure rolls the whole transaction back.
                // (The group then forgets the jti values it added to the replay memory.)
                group_commit::Run::Alone => match f(&mut Tx {
                    conn,
                    replay: Some(replay),
                }) {
                    Ok(value) => group_commit::Ran::Keep(deliver(Ok(value))),
                    Err(e) => {
                        let retire = e.store_error().is_some_and(StoreError::retires_connection);
                        group_commit::Ran::RollBack(deliver(Err(e)), retire)
                    }
                },
                group_commit::Run::Savepoint => {
                    let mark = replay.mark();
                    match in_transaction(conn, Some(&mut *replay), f) {
                        Ok(result) => {
                            if result.is_err() {
                                // Rolled back to its savepoint: so are its jti values.
                                replay.undo_to(mark);
                            }
                            group_commit::Ran::Keep(deliver(result))
                        }
                        // Its values stay remembered: refusing them later is the safe side.
                        Err((result, err)) => group_commit::Ran::Broken(deliver(result), err),
                    }
                }
            }
        });
        let not_committed = || {
            E::from(StoreError::Unavailable(
                "the write was not committed".into(),
            ))
        };
        queue.send(job).map_err(|_| not_committed())?;
        answered.await.unwrap_or_else(|_| Err(not_committed()))
    }
}

/// Runs `f` in a transaction (a savepoint when one is already open): committed when `f`
/// returns `Ok`, rolled back when it returns `Err`. `Err((result, error))` when the database
/// itself failed to begin, commit or roll back, which the connection's transaction may not
/// survive.
fn in_transaction<T, E, F>(
    conn: &mut DbConnection,
    replay: Option<&mut replay::Writer>,
    f: F,
) -> Result<Result<T, E>, (Result<T, E>, StoreError)>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    E: StoreFailure,
{
    let mut outcome = None;
    let committed = conn.transaction::<(), Abort, _>(|conn| {
        let result = f(&mut Tx { conn, replay });
        let failed = result.is_err();
        outcome = Some(result);
        if failed { Err(Abort::Rollback) } else { Ok(()) }
    });
    match (committed, outcome) {
        (Ok(()), Some(result)) | (Err(Abort::Rollback), Some(result)) => Ok(result),
        (Err(Abort::Database(e)), outcome) => {
            let err = StoreError::from(e);
            let result = match outcome {
                Some(Err(own)) => Err(own),
                _ => Err(E::from(err.clone())),
            };
            Err((result, err))
        }
        (_, None) => Err((
            Err(E::from(StoreError::Other("transaction did not run".into()))),
            StoreError::Other("transaction did not run".into()),
        )),
    }
}

/// A connection lent to domain code for one [`Store::read`] or [`Store::write`]; the store's
/// modules offer typed operations on it, and the domain never sees diesel.
pub struct Tx<'a> {
    pub(crate) conn: &'a mut DbConnection,
    /// SQLite writes: the writer thread's replay memory.
    pub(in crate::store) replay: Option<&'a mut replay::Writer>,
}

/// Errors that can carry a [`StoreError`]: every domain error type, and `StoreError` itself. The
/// store looks inside to retire connections that lost their server.
pub trait StoreFailure: From<StoreError> {
    fn store_error(&self) -> Option<&StoreError>;
}

impl StoreFailure for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// Why a transaction did not commit.
enum Abort {
    Rollback,
    Database(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(err: diesel::result::Error) -> Self {
        Self::Database(err)
    }
}

impl Inner {
    fn with_connection<T, E: StoreFailure>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut pooled = self
            .pool
            .get_timeout(self.acquire_timeout)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let result = f(&mut pooled.conn);
        if let Err(err) = &result {
            // A lock timeout leaves the connection good; after any other unavailable state the
            // pool opens a new one, which sees the database as it is now.
            pooled.broken = err
                .store_error()
                .is_some_and(StoreError::retires_connection);
        }
        result
    }
}
