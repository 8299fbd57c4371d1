//! occcd's audit export format, shared by the daemon (which writes it) and
//! `occcctl audit verify-export` (which checks it offline).
//!
//! The daemon's own chain links entries with an HMAC only it can compute. For
//! outsiders each entry also has a **public link**, SHA-256 over the previous
//! public link and the entry's fields; occcd signs the public link of its
//! chain head with Ed25519 now and then (a **checkpoint**). An export is JSON
//! Lines: a signed header naming the last entry, the checkpoint it starts from (its anchor), the entries in
//! order with the checkpoints between them, and a checkpoint of its last entry.
//!
//! Invariant: [`verify_export`] accepts an export only if every entry follows
//! the one before it without a gap, every link recomputes, every checkpoint's
//! signature verifies under the given public key, and the last line is a
//! checkpoint of the last entry — so an edit, a reordering, a removal or a
//! truncation is refused, naming the line.

mod lines;
mod link;
mod verify;

pub use lines::{CheckpointLine, EntryLine, ExportLine, FORMAT};
pub use link::{
    CHECKPOINT_CONTEXT, EntryFields, GENESIS_LINK, HEADER_CONTEXT, Link, checkpoint_message,
    header_message, next_link,
};
pub use verify::{ExportReport, VerifyError, parse_public_key, verify_export};
