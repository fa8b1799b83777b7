//! Embedded migrations, one folder per backend with identical names (`migrations/sqlite`,
//! `migrations/postgres`). The only place that branches on the backend, because the SQL differs.

use diesel::RunQueryDsl;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Backend, DbConnection, StoreError};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises migration runs of several instances starting at once against one PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x7061_6972_6761_7465; // "pairgate"

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn failed(err: BoxError) -> StoreError {
    StoreError::Other(format!("migration failed: {err}"))
}

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let versions = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE).map_err(failed)?,
        DbConnection::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .execute(c)?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.into_iter().map(|m| m.to_string()).collect::<Vec<_>>());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                .execute(c)?;
            return result.map_err(failed);
        }
    };
    Ok(versions.into_iter().map(|v| v.to_string()).collect())
}

/// Reverts every applied migration; returns the versions reverted.
pub fn revert_all(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let versions = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE).map_err(failed)?,
        DbConnection::Pg(c) => c.revert_all_migrations(POSTGRES).map_err(failed)?,
    };
    Ok(versions.into_iter().map(|v| v.to_string()).collect())
}

/// Reverts the latest applied migration; returns its version.
pub fn revert_last(conn: &mut DbConnection) -> Result<String, StoreError> {
    let version = match conn {
        DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE).map_err(failed)?,
        DbConnection::Pg(c) => c.revert_last_migration(POSTGRES).map_err(failed)?,
    };
    Ok(version.to_string())
}

/// The names of the embedded migrations for a backend, in order.
pub fn names(backend: Backend) -> Result<Vec<String>, StoreError> {
    Ok(match backend {
        Backend::Sqlite => MigrationSource::<Sqlite>::migrations(&SQLITE)
            .map_err(failed)?
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        Backend::Postgres => MigrationSource::<Pg>::migrations(&POSTGRES)
            .map_err(failed)?
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
    })
}
