//! The telemetry error vocabulary. Token and proof refusals keep their RFC 6750 §3.1 / RFC 9449
//! §7.1 meaning (the HTTP layer turns them into `WWW-Authenticate: DPoP` challenges); the rest
//! are about the body, the reader's access, or capacity. Messages are fixed texts, safe to send;
//! store detail is logged, never serialised.

use std::fmt;

use crate::accounts::AccountError;
use crate::store::{StoreError, StoreFailure};
use crate::verifier::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// RFC 6750 §3.1, RFC 9449 §7.1, §9: the token or its proof was refused.
    #[error(transparent)]
    Auth(#[from] VerifyError),
    /// RFC 6750 §3.1: the token lacks the `telemetry:write` scope.
    #[error("insufficient_scope")]
    InsufficientScope,
    /// The upload's body breaks a rule; nothing of it was stored.
    #[error("{0}")]
    InvalidBatch(BatchProblem),
    /// The body is not JSON.
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than `server.max_json_bytes`.
    #[error("the body is too large")]
    TooLarge,
    /// Too many uploads are waiting for the writer: retry later (503 with Retry-After).
    #[error("too many uploads are waiting; retry later")]
    Busy,
    /// Reads: no live, fully signed-in session.
    #[error("sign in first")]
    SignInRequired,
    /// Reads: this person may not read device data here (e.g. staff, or TOTP enrolment pending).
    #[error("you are not allowed to do that")]
    Forbidden,
    /// Reads: no such device among those the person may see.
    #[error("not found")]
    NotFound,
    /// Reads: a bad query parameter.
    #[error("{0}")]
    InvalidQuery(&'static str),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What is wrong with an upload's body, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProblem {
    /// The zero-based index of the offending reading, if one is to blame.
    pub reading: Option<usize>,
    pub reason: &'static str,
}

impl BatchProblem {
    pub fn body(reason: &'static str) -> Self {
        Self {
            reading: None,
            reason,
        }
    }

    pub fn at(reading: usize, reason: &'static str) -> Self {
        Self {
            reading: Some(reading),
            reason,
        }
    }
}

impl fmt::Display for BatchProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reading {
            Some(i) => write!(f, "reading {i}: {}", self.reason),
            None => f.write_str(self.reason),
        }
    }
}

impl StoreFailure for TelemetryError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AccountError> for TelemetryError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Store(e) => Self::Store(e),
            AccountError::SessionEnded => Self::SignInRequired,
            AccountError::NotFound => Self::NotFound,
            _ => Self::Forbidden,
        }
    }
}
