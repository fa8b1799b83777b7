//! The store's error type: what the layers above need to decide, and nothing of diesel.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A storage failure, classified for the layers above.
///
/// The `String` payloads are internal detail for logs; HTTP mappers never put them in a response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The row that the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or integrity constraint refused the write (the conflict is the signal).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot take the operation now: unreachable, overloaded, out of disk space,
    /// read-only or failing I/O. The caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupted row.
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// True when retrying later may succeed (the HTTP layers answer 503 with `Retry-After`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// True when the connection that saw this error should be closed rather than used again.
    /// A lock timeout leaves a good connection; every other unavailable state may belong to the
    /// session itself (a lost PostgreSQL connection, a session opened read-only, a SQLite file
    /// opened read-only or after an I/O error), and a new connection picks up the repaired
    /// database.
    pub fn retires_connection(&self) -> bool {
        match self {
            Self::Unavailable(message) => !is_lock_timeout(message),
            _ => false,
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                match kind {
                    DatabaseErrorKind::UniqueViolation
                    | DatabaseErrorKind::ForeignKeyViolation
                    | DatabaseErrorKind::CheckViolation
                    | DatabaseErrorKind::NotNullViolation => Self::Conflict(message),
                    DatabaseErrorKind::SerializationFailure => Self::Conflict(message),
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand
                    // PostgreSQL SQLSTATE 25006: a standby, or default_transaction_read_only.
                    | DatabaseErrorKind::ReadOnlyTransaction => Self::Unavailable(message),
                    _ if is_transient_message(&message) => Self::Unavailable(message),
                    _ => Self::Other(message),
                }
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("broken transaction manager".into())
            }
            // A COMMIT that failed (disk full, I/O error) and whose rollback failed too: the
            // commit's error says why.
            DieselError::RollbackErrorOnCommit { commit_error, .. } => Self::from(*commit_error),
            other => Self::Other(other.to_string()),
        }
    }
}

/// Errors that diesel reports as `Unknown` but that mean "try again": SQLite's unavailable
/// states (`SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_READONLY`, `SQLITE_CANTOPEN`,
/// `SQLITE_NOMEM`, in `sqlite3_errmsg`'s words), PostgreSQL connection loss (libpq's wording), a
/// server shutting down (SQLSTATE 57P01 text), and a server out of disk space or memory (class
/// 53). diesel keeps only the message of these, so the message decides.
fn is_transient_message(message: &str) -> bool {
    const TRANSIENT: &[&str] = &[
        "database is locked",
        "database table is locked",
        "database or disk is full",
        "disk I/O error",
        "attempt to write a readonly database",
        "unable to open database file",
        "out of memory",
        "No space left on device",
        "could not extend file",
        "server closed the connection",
        "terminating connection",
        "connection to server",
        "could not connect",
        "no connection to the server",
        "the database system is starting up",
        "the database system is shutting down",
        "SSL connection has been closed",
    ];
    TRANSIENT.iter().any(|t| message.contains(t))
}

/// SQLite's lock timeouts: another connection holds the lock, this one is fine.
fn is_lock_timeout(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(err: diesel::ConnectionError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_diesel_errors() {
        assert!(matches!(
            StoreError::from(DieselError::NotFound),
            StoreError::NotFound
        ));
        let unique = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert!(matches!(StoreError::from(unique), StoreError::Conflict(_)));
        let locked = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("database is locked".to_owned()),
        );
        let locked = StoreError::from(locked);
        assert!(locked.is_unavailable());
        assert!(!locked.retires_connection());
    }

    /// Disk full, I/O errors and read-only databases are unavailable states, not bugs, and the
    /// connection that met them is replaced.
    #[test]
    fn storage_faults_are_unavailable() {
        let unknown = |message: &str| {
            StoreError::from(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            ))
        };
        for message in [
            "database or disk is full",
            "disk I/O error",
            "attempt to write a readonly database",
            "unable to open database file",
            "could not extend file \"base/16384/2619\": No space left on device",
        ] {
            let err = unknown(message);
            assert!(err.is_unavailable(), "{message}");
            assert!(err.retires_connection(), "{message}");
        }
        let read_only = StoreError::from(DieselError::DatabaseError(
            DatabaseErrorKind::ReadOnlyTransaction,
            Box::new("cannot execute INSERT in a read-only transaction".to_owned()),
        ));
        assert!(read_only.retires_connection());
        let on_commit = StoreError::from(DieselError::RollbackErrorOnCommit {
            rollback_error: Box::new(DieselError::BrokenTransactionManager),
            commit_error: Box::new(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("database or disk is full".to_owned()),
            )),
        });
        assert!(on_commit.is_unavailable());
        assert!(!unknown("no such table: nothing").is_unavailable());
    }
}
