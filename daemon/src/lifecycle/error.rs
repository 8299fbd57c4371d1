//! Why the daemon could not start or serve: one variant per phase's
//! failure, each with a message an operator can act on.
//!
//! Invariant: no variant carries a secret (key sources are named, never
//! shown).

use std::path::PathBuf;

use crate::{
    audit::AuditError,
    auth::AuthError,
    crypto::{KeyError, KeySource, SealError},
    store::StoreError,
    transport::SocketError,
};

/// Why the daemon could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The metrics listener could not be set up.
    #[error("metrics.listen: {0}")]
    Metrics(String),
    /// Another occcd, or a restore, holds the state folder.
    #[error("{0}")]
    StateLocked(String),
    /// An event output could not be set up.
    #[error("events: {0}")]
    Events(String),
    /// No usable master key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store did not open with the key found.
    #[error("cannot open the store with the {key_source}: {source}")]
    Store {
        /// Where the key came from.
        key_source: KeySource,
        /// What the store said.
        source: StoreError,
    },
    /// A master key rotation was interrupted.
    #[error(
        "a master key rotation was interrupted — {0}; it says which key the store opens \
         with and finishes"
    )]
    UnfinishedRotation(String),
    /// The store's wrapped data root does not open with the master key.
    #[error(
        "the store opens with the {0} but its wrapped data root does not: the store was \
         altered, or its rotation table copied from another store"
    )]
    DataRoot(KeySource),
    /// Core dumps could not be turned off.
    #[error("cannot turn off core dumps (RLIMIT_CORE): {0}")]
    CoreDumps(String),
    /// The state folder could not be prepared.
    #[error("cannot create state folder {path}: {source}")]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The audit log could not be started or written.
    #[error("audit log unavailable at start: {0}")]
    Audit(#[from] AuditError),
    /// The authentication engine could not start.
    #[error("authentication engine: {0}")]
    Auth(AuthError),
    /// The key sealing evidence and secrets is unusable.
    #[error("sealing key unusable: {0}")]
    Sealing(SealError),
    /// The integrity monitor's stored state could not be read.
    #[error("integrity state unreadable: {0}")]
    IntegrityState(StoreError),
    /// The reflection service could not be built.
    /// Skill governance could not start.
    #[error("skill governance: {0}")]
    Skills(crate::skills::SkillError),
    /// OpenClaw's config editor could not start (its versions unreadable).
    #[error("OpenClaw config editor: {0}")]
    OpenClawConfig(crate::openclaw::ConfigError),
    #[error("gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
}
