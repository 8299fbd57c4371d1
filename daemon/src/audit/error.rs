//! Why the audit log could not record an entry or read the chain.
//!
//! Invariant: a failure to record is never silent — callers either get
//! this error or log it (`record_or_log`).

use std::time::Duration;

use crate::store::StoreError;

/// Why an entry could not be recorded or the chain not read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The writer did not commit within the timeout.
    #[error("audit entry not committed within {0:?}")]
    Timeout(Duration),
    /// The writer has stopped (the daemon is shutting down).
    #[error("the audit writer has stopped")]
    WriterStopped,
    /// The store takes no entries now (full, or refusing changes); the
    /// message says why and what to do.
    #[error("{0}")]
    NotTaken(String),
    /// The database refused the batch.
    #[error("audit entry could not be committed: {0}")]
    Commit(String),
    /// A read asked for something malformed; the message says what.
    #[error("{0}")]
    BadQuery(String),
    /// Reading the chain failed.
    #[error("audit log could not be read: {0}")]
    Read(String),
}

impl From<StoreError> for AuditError {
    fn from(err: StoreError) -> Self {
        Self::Read(err.to_string())
    }
}
