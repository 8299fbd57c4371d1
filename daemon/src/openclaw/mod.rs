//! OpenClaw's own configuration (`openclaw.json`), which occcd edits on
//! people's behalf (issue #12): parsing with positions, the version of a
//! text, redaction of secrets for readers, and the policy diff that decides
//! who must sign an edit off.
//!
//! Invariant: domain logic only — no tonic types, no SQL; the text is kept
//! exactly as written (comments and all) and only ever parsed, never
//! re-serialised into the file.

pub mod document;
pub mod file;
pub mod policy;
pub mod redact;
