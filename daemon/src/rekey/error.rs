//! Why a rotation did not happen, or did not finish.

use crate::{crypto::KeyError, store::StoreError};

/// Why a rotation did not happen (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    /// A key could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// Which.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The rotation cannot run as asked; nothing was changed.
    #[error("{0}")]
    NotNow(String),
}
