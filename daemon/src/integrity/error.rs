//! What integrity operations answer when they refuse, in one type the
//! service layer maps to gRPC status in one place; and the check of the
//! notes people write (release, acknowledgement), as the audit log's
//! note rule says.
//!
//! Invariant: every refusal says what went wrong (and, where there is one,
//! what to do); a note is 1 to
//! [`MAX_NOTE_CHARS`] characters, without control characters but line
//! breaks and tabs.

use super::{engine::EngineError, snapshot::SnapshotError};

/// Why an integrity operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// No container by that name is monitored.
    #[error("no monitored container named {0:?} (see [[integrity.containers]] in occcd.toml)")]
    UnknownContainer(String),
    /// The engine cannot be reached or refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Not quarantined.
    #[error("{0} is not quarantined")]
    NotQuarantined(String),
    /// Refused by policy, with the reasons.
    #[error("{0}")]
    Refused(String),
    /// Bad input.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Snapshot storage failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The database failed.
    #[error("integrity state could not be stored: {0}")]
    Store(#[from] crate::store::StoreError),
}

pub use crate::audit::note::MAX_NOTE_CHARS;

/// `note` checked by [`crate::audit::note::checked_note`], as an
/// integrity refusal that says `what_to_say`.
pub(super) fn checked_note<'a>(
    note: &'a str,
    what_to_say: &str,
) -> Result<&'a str, IntegrityError> {
    crate::audit::note::checked_note(note, what_to_say).map_err(|reason| {
        IntegrityError::InvalidInput {
            field: "note",
            reason,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_carry_no_control_characters() {
        assert_eq!(
            checked_note("  looked at it\n\tall fine ", "say").unwrap(),
            "looked at it\n\tall fine"
        );
        assert!(checked_note("   ", "say").is_err());
        assert!(checked_note(&"x".repeat(MAX_NOTE_CHARS + 1), "say").is_err());
        let forged = checked_note("ok\r\x1b[2Kaudit: released by root", "say").unwrap_err();
        assert!(
            forged.to_string().contains("control characters"),
            "{forged}"
        );
    }
}
