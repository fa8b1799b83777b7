//! The only module that knows diesel. It owns the connection pool, runs blocking database work
//! off the async workers, and offers typed operations to the domain. Queries are written once,
//! against [`DbConnection`], and run on SQLite and PostgreSQL alike.

pub mod audit;
mod batch;
mod checkpoint;
mod connection;
pub mod erp;
mod error;
pub mod flows;
pub mod groups;
pub mod keys;
pub mod mail;
pub mod migrations;
pub mod pairings;
pub mod registry;
pub mod replay;
pub mod schema;
pub mod sessions;
pub mod telemetry;
pub mod tokens;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{ManageConnection, Pool};
use diesel::{Connection, RunQueryDsl};
use tokio::sync::Mutex;

pub use connection::{Backend, ConnectionSpec, DbConnection};
pub use error::StoreError;

use crate::config::DatabaseSettings;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<ConnectionSpec>,
    backend: Backend,
    acquire_timeout: Duration,
    /// SQLite allows one writer at a time. Write transactions queue here instead of failing with
    /// SQLITE_BUSY when a deferred transaction tries to upgrade its read snapshot to a write.
    sqlite_writer: Mutex<()>,
}

impl Store {
    /// Opens the database. The first connection is made directly, so that a wrong password, an
    /// unreachable host or an unwritable file is reported with its real cause.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, StoreError> {
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
            .build_unchecked(spec);
        let inner = Arc::new(Inner {
            pool,
            backend,
            acquire_timeout: settings.acquire_timeout(),
            sqlite_writer: Mutex::new(()),
        });
        if backend == Backend::Sqlite {
            checkpoint::spawn(&inner);
        }
        Ok(Self { inner })
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.read(|tx| migrations::run_pending(tx.conn)).await
    }

    /// Reverts every migration (tests use it to check that `down.sql` works).
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>, StoreError> {
        self.read(|tx| migrations::revert_all(tx.conn)).await
    }

    /// True when the database answers a trivial query within the acquire timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|tx| {
            diesel::sql_query("SELECT 1").execute(tx.conn)?;
            Ok(())
        })
        .await
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
        tokio::task::spawn_blocking(move || inner.with_connection(|conn| f(&mut Tx { conn })))
            .await
            .map_err(|e| E::from(StoreError::Other(format!("blocking task failed: {e}"))))?
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
        let _writer = match self.inner.backend {
            Backend::Sqlite => Some(self.inner.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
        self.read(move |tx| {
            let mut outcome = None;
            let committed = tx.conn.transaction::<(), Abort, _>(|conn| {
                let result = f(&mut Tx { conn });
                let failed = result.is_err();
                outcome = Some(result);
                if failed { Err(Abort::Rollback) } else { Ok(()) }
            });
            match (committed, outcome) {
                (Ok(()), Some(result)) | (Err(Abort::Rollback), Some(result)) => result,
                (Err(Abort::Database(e)), _) => Err(E::from(StoreError::from(e))),
                (_, None) => Err(E::from(StoreError::Other("transaction did not run".into()))),
            }
        })
        .await
    }
}

/// A connection lent to domain code for one [`Store::read`] or [`Store::write`]; the store's
/// modules offer typed operations on it, and the domain never sees diesel.
pub struct Tx<'a> {
    pub(crate) conn: &'a mut DbConnection,
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
            // For PostgreSQL an unavailable error means the connection is gone; SQLite's
            // "locked" is transient and the connection stays good.
            let lost = err.store_error().is_some_and(StoreError::is_unavailable);
            pooled.broken = lost && self.backend == Backend::Postgres;
        }
        result
    }
}
