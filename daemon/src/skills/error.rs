//! What skill operations answer when they refuse, in one type the service
//! layer maps to gRPC status in one place.
//!
//! Invariant: every refusal names what was wrong — the archive entry, the
//! file, the rule, the state — and what to do; none carries file contents
//! beyond a bounded excerpt.

/// Why a skill operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// The archive or folder is not an acceptable skill (names the entry).
    #[error("{0}")]
    BadArchive(String),
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// More than a limit allows (size, files, entries).
    #[error("{0}")]
    TooLarge(String),
    /// Another submission is being assessed.
    #[error("{0}")]
    Busy(String),
    /// No skill version with that tree hash.
    #[error("no skill with tree hash {0} (see ListSkills)")]
    NotFound(String),
    /// The decision is not allowed (role, two-person rule, own submission,
    /// state).
    #[error("{0}")]
    Refused(String),
    /// Installing or un-installing on disk failed.
    #[error("skill files could not be written: {0}")]
    Disk(String),
    /// The database failed.
    #[error("skill state could not be stored: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl SkillError {
    /// An invalid field.
    pub(super) fn input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// A disk failure, with the OS error.
    pub(super) fn disk(what: &str, err: &std::io::Error) -> Self {
        Self::Disk(format!("{what}: {err}"))
    }
}
