//! OpenClaw's own configuration (`openclaw.json`), which occcd edits on
//! people's behalf (issue #12): parsing with positions, the schema check,
//! the version of a text, redaction of secrets for readers, the policy diff
//! that decides who must sign an edit off, the versions kept, and whether
//! the file drifted from the last accepted one.
//!
//! Invariant: domain logic only — no tonic types, no SQL; the text is kept
//! exactly as written (comments and all) and only ever parsed, never
//! re-serialised into the file.

pub mod config;
pub mod diff;
pub mod document;
pub mod drift;
pub mod editor;
pub mod error;
pub mod file;
pub mod history;
pub mod policy;
pub mod redact;
pub mod schema;
pub mod targets;
pub mod versions;
pub mod view;
pub mod write_plan;

pub use editor::ConfigEditor;
pub use error::ConfigError;
