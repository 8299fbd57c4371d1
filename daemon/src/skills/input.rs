//! Who asks, and the checks of what people type: decision notes and tree
//! hashes.
//!
//! Invariant: a note is 1 to [`MAX_NOTE_CHARS`] characters without control
//! characters but line breaks and tabs (it is shown and audited); a tree
//! hash is 64 lowercase hex digits before anything is looked up.

use super::{error::SkillError, tree::is_tree_hash};
use crate::{audit::Actor, auth::role::Role, transport::PeerCredentials};

pub use crate::audit::note::MAX_NOTE_CHARS;

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct SkillActor<'a> {
    /// Their username.
    pub username: &'a str,
    /// Their role.
    pub role: Role,
    /// Their socket peer.
    pub peer: PeerCredentials,
}

impl SkillActor<'_> {
    pub(super) fn audit_actor(&self) -> Actor {
        Actor::user(Some(self.peer), self.username)
    }
}

/// `note` checked by [`crate::audit::note::checked_note`].
pub fn checked_note(note: &str) -> Result<&str, SkillError> {
    crate::audit::note::checked_note(note, "say why")
        .map_err(|reason| SkillError::input("note", reason))
}

/// `hash` if it is a tree hash; else a refusal naming `field`.
pub fn checked_hash(field: &'static str, hash: &str) -> Result<(), SkillError> {
    if is_tree_hash(hash) {
        Ok(())
    } else {
        Err(SkillError::input(
            field,
            "a tree hash: 64 lowercase hex digits (see ListSkills)",
        ))
    }
}
