//! One connection type for both backends (`#[derive(MultiConnection)]`), and the r2d2 manager that
//! opens it. The backend is chosen here from the configured URL's scheme, never by trying one
//! backend after the other, so a wrong password or an unreachable host is reported with its real
//! cause.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::ManageConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

use crate::config::{DatabaseSettings, DatabaseUrl, SqliteSynchronous};

/// A connection to either backend. Queries written against it run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pooled connection, remembering whether a query saw the connection die, so that the pool
/// drops it instead of testing every connection on every checkout (a round trip saved per query).
pub struct PooledConnection {
    pub(crate) conn: DbConnection,
    pub(crate) broken: bool,
}

/// How to open connections: the URL and the per-connection SQLite settings.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    url: DatabaseUrl,
    sqlite_busy_timeout_ms: u32,
    sqlite_synchronous: SqliteSynchronous,
    sqlite_cache: SqliteCache,
}

/// SQLite page cache per connection, in KiB, from `database.sqlite_cache_mib` (all connections
/// together): half for the writer's own connection, which commits every write and whose cache
/// stays warm, the other half shared by the pool's connections, whose caches SQLite drops
/// whenever another connection wrote.
#[derive(Debug, Clone, Copy)]
struct SqliteCache {
    writer_kib: u32,
    pooled_kib: u32,
}

impl SqliteCache {
    fn new(settings: &DatabaseSettings) -> Self {
        let total_kib = settings.sqlite_cache_mib.get().saturating_mul(1024);
        let writer_kib = total_kib / 2;
        Self {
            writer_kib,
            pooled_kib: ((total_kib - writer_kib) / settings.pool_size.get()).max(1),
        }
    }
}

impl ConnectionSpec {
    pub fn new(settings: &DatabaseSettings) -> Self {
        Self {
            url: settings.url.clone(),
            sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
            sqlite_synchronous: settings.sqlite_synchronous,
            sqlite_cache: SqliteCache::new(settings),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database file, for SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// The connection URL, for PostgreSQL.
    pub(super) fn postgres_url(&self) -> Option<&str> {
        match &self.url {
            DatabaseUrl::Sqlite(_) => None,
            DatabaseUrl::Postgres(url) => Some(url),
        }
    }

    /// Opens one connection with the backend chosen by the URL scheme.
    pub fn establish(&self) -> Result<DbConnection, ConnectionError> {
        self.establish_with_cache(self.sqlite_cache.pooled_kib)
    }

    /// The SQLite writer thread's own connection (`group_commit.rs`), with the writer's share
    /// of the page cache.
    pub(super) fn connect_writer(&self) -> Result<PooledConnection, ConnectionError> {
        self.establish_with_cache(self.sqlite_cache.writer_kib)
            .map(|conn| PooledConnection {
                conn,
                broken: false,
            })
    }

    fn establish_with_cache(&self, cache_kib: u32) -> Result<DbConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = self.establish_sqlite(path)?;
                conn.batch_execute(&format!("PRAGMA cache_size = -{cache_kib};"))
                    .map_err(|e| {
                        ConnectionError::BadConnection(format!("configuring SQLite: {e}"))
                    })?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Pg),
        }
    }

    fn establish_sqlite(&self, path: &Path) -> Result<SqliteConnection, ConnectionError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                ConnectionError::BadConnection(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        create_private(path).map_err(|e| {
            ConnectionError::BadConnection(format!("cannot create {}: {e}", path.display()))
        })?;
        let path = path.to_str().ok_or_else(|| {
            ConnectionError::BadConnection("the SQLite path is not valid UTF-8".into())
        })?;
        let mut conn = SqliteConnection::establish(path)?;
        let synchronous = match self.sqlite_synchronous {
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
        };
        // busy_timeout first: switching to WAL needs a lock that another connection may hold.
        // temp_store: statement journals of multi-row inserts stay in memory, not in temp files.
        // cache_size: set by the caller (`SqliteCache`). wal_autocheckpoint off: the store's
        // checkpoint thread
        // does it (store/checkpoint.rs), so no commit waits for a checkpoint's fsync;
        // journal_size_limit trims the WAL file back after a burst.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = 67108864;",
            self.sqlite_busy_timeout_ms
        ))
        .map_err(|e| ConnectionError::BadConnection(format!("configuring SQLite: {e}")))?;
        Ok(conn)
    }
}

/// Creates the database file readable by its owner only (mode 0600), before SQLite would create
/// it under the umask; SQLite gives its `-wal` and `-shm` files the database file's mode. A file
/// from before that others may read is narrowed to its owner's bits (best effort: a process
/// that does not own the file still opens it).
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0
                && let Err(e) =
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "others may read the database file"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

impl ManageConnection for ConnectionSpec {
    type Connection = PooledConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.establish().map(|conn| PooledConnection {
            conn,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        use diesel::r2d2::R2D2Connection;
        conn.conn
            .ping()
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.broken || conn.conn.is_broken()
    }
}
