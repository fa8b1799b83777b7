//! The only module that knows diesel. It owns the connection pool, runs blocking database work
//! off the async workers, and offers typed operations to the domain. Queries are written once,
//! against [`DbConnection`], and run on SQLite and PostgreSQL alike.

pub mod audit;
mod connection;
mod error;
pub mod migrations;
pub mod schema;

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
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                backend,
                acquire_timeout: settings.acquire_timeout(),
                sqlite_writer: Mutex::new(()),
            }),
        })
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.run(migrations::run_pending).await
    }

    /// Reverts every migration (tests use it to check that `down.sql` works).
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>, StoreError> {
        self.run(migrations::revert_all).await
    }

    /// True when the database answers a trivial query within the acquire timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Connections in the pool: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.inner.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool (no transaction).
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_connection(f))
            .await
            .map_err(|e| StoreError::Other(format!("blocking task failed: {e}")))?
    }

    /// Runs `f` in a write transaction: committed when `f` returns `Ok`, rolled back otherwise.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let _writer = match self.inner.backend {
            Backend::Sqlite => Some(self.inner.sqlite_writer.lock().await),
            Backend::Postgres => None,
        };
        self.run(move |conn| conn.transaction(f)).await
    }
}

impl Inner {
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut pooled = self.pool.get_timeout(self.acquire_timeout)?;
        let result = f(&mut pooled.conn);
        if let Err(StoreError::Unavailable(_)) = &result {
            // For PostgreSQL this means the connection is gone; SQLite's "locked" is transient
            // and the connection stays good.
            pooled.broken = self.backend == Backend::Postgres;
        }
        result
    }
}
