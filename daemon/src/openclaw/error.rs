//! What config operations answer when they refuse, in one type the service
//! layer maps to gRPC status in one place.
//!
//! Invariant: every refusal says what to do next — the current version to
//! edit from, the line and column or JSON path at fault, the role needed —
//! and none carries the config's text.

use super::{document::ConfigParseError, file::ConfigFileError, schema::SchemaError};

/// Why a config operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No watched container has that name, or none has an OpenClaw config.
    #[error("{0}")]
    UnknownContainer(String),
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The text is not JSON5, too large or too deep.
    #[error("the config does not parse: {0}")]
    Parse(#[from] ConfigParseError),
    /// The text breaks the schema.
    #[error("{}", schema_message(.0))]
    Schema(Vec<SchemaError>),
    /// Someone changed the file since the caller read it.
    #[error(
        "the config changed since version {expected}; it is now version {current}: read it again and re-apply your edit"
    )]
    VersionMismatch {
        /// What the caller edited.
        expected: String,
        /// What is on disk now (empty: no file).
        current: String,
    },
    /// The edit loosens a security setting and the caller is not a
    /// super-admin.
    #[error("this edit weakens security settings ({0}); a super-admin must make it")]
    NeedsSuperAdmin(String),
    /// No stored version with that number.
    #[error(
        "container {container} has no stored config version {number} (see ListConfigVersions; old versions are pruned beyond openclaw.versions_kept)"
    )]
    NoVersion {
        /// The container.
        container: String,
        /// The number asked for.
        number: i64,
    },
    /// The file on disk is not what occcd may read or write (a symlink, a
    /// FIFO, too large).
    #[error("{0}")]
    Unsafe(ConfigFileError),
    /// The disk refused (full, read-only): the old file is untouched.
    #[error("the config could not be written, the old file is unchanged: {0}")]
    Disk(ConfigFileError),
    /// A container is quarantined: edits wait until it is released.
    #[error(
        "locked: a container is quarantined; a super-admin must release it (occc.v1.Integrity/ReleaseQuarantine)"
    )]
    Quarantined,
    /// The caller's session ended, lost its elevation or its role while the
    /// write waited for its turn.
    #[error("{0}")]
    NoLongerAllowed(String),
    /// Something in occcd failed (a task).
    #[error("{0}")]
    Internal(String),
    /// A stored version did not open with the sealing key.
    #[error("a stored config version does not open: {0}")]
    Sealed(#[from] crate::crypto::SealError),
    /// The database failed.
    #[error("config versions could not be stored: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn schema_message(errors: &[SchemaError]) -> String {
    let listed: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect();
    format!("the config breaks the schema: {}", listed.join("; "))
}

impl ConfigError {
    /// An invalid field.
    pub(super) fn input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// A file error: what is found on disk is refused as unsafe; what the
    /// system refuses is a disk failure.
    pub(super) fn file(err: ConfigFileError) -> Self {
        match err {
            ConfigFileError::NotARegularFile { .. }
            | ConfigFileError::TooLarge { .. }
            | ConfigFileError::BadPath(_) => Self::Unsafe(err),
            ConfigFileError::Io { .. } => Self::Disk(err),
        }
    }
}
