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
    /// The database cannot be reached or is overloaded; the caller may retry later.
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
                    | DatabaseErrorKind::UnableToSendCommand => Self::Unavailable(message),
                    _ if is_transient_message(&message) => Self::Unavailable(message),
                    _ => Self::Other(message),
                }
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("broken transaction manager".into())
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// Errors that diesel reports as `Unknown` but that mean "try again": SQLite lock timeouts and
/// PostgreSQL connection loss (libpq's wording), or a server shutting down (SQLSTATE 57P01 text).
fn is_transient_message(message: &str) -> bool {
    const TRANSIENT: &[&str] = &[
        "database is locked",
        "database table is locked",
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
        assert!(StoreError::from(locked).is_unavailable());
    }
}
