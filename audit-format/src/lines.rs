//! The lines of an export, as JSON objects tagged by `type`.
//!
//! Invariant: byte strings are lowercase hex and `detail_json` is carried as
//! the exact string occcd stored, so the verifier hashes the same bytes the
//! daemon did.

use serde::{Deserialize, Serialize};

use crate::link::EntryFields;

/// The value of the header's `format`.
pub const FORMAT: &str = "occcd-audit-export/1";

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportLine {
    /// The first line.
    Header {
        /// [`FORMAT`].
        format: String,
        /// The Ed25519 key the checkpoints are signed with, as occcd knows
        /// it (informational: the verifier uses the key it is given).
        public_key_hex: String,
        /// When the export was made.
        exported_at_unix_ms: i64,
        /// The last entry the export holds (0: none).
        last_sequence: u64,
        /// Ed25519 over [`crate::header_message`] (which also covers the
        /// anchor's sequence and link).
        signature_hex: String,
    },
    /// The checkpoint the export starts after (sequence 0: the beginning).
    Anchor(CheckpointLine),
    /// An entry.
    Entry(EntryLine),
    /// A signed checkpoint of the entry just before it.
    Checkpoint(CheckpointLine),
}

/// A signed statement: "the public link after entry `sequence` is `link_hex`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    /// The entry it covers (0: before the first entry; then unsigned).
    pub sequence: u64,
    /// When occcd signed it (signed too).
    pub at_unix_ms: i64,
    /// The public link after that entry.
    pub link_hex: String,
    /// Ed25519 over [`crate::checkpoint_message`]; empty for sequence 0.
    pub signature_hex: String,
}

/// An audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    /// Position in the chain, from 1.
    pub sequence: u64,
    /// When it was recorded.
    pub at_unix_ms: i64,
    /// What happened.
    pub kind: String,
    /// The occcd user; empty when there was none.
    pub actor: String,
    /// The caller's OS uid, gid and pid, when there was a caller.
    pub actor_uid: Option<u32>,
    /// The caller's gid.
    pub actor_gid: Option<u32>,
    /// The caller's pid.
    pub actor_pid: Option<u32>,
    /// Details, a JSON object, exactly as stored.
    pub detail_json: String,
    /// occcd's own (HMAC) chain hash of the entry, for cross-checking with
    /// `ListAuditEntries`; outsiders cannot recompute it.
    pub entry_hash_hex: String,
}

impl EntryLine {
    /// The fields the public link covers.
    #[must_use]
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            sequence: self.sequence,
            at_unix_ms: self.at_unix_ms,
            kind: &self.kind,
            actor: &self.actor,
            actor_uid: self.actor_uid,
            actor_gid: self.actor_gid,
            actor_pid: self.actor_pid,
            detail_json: &self.detail_json,
        }
    }
}
