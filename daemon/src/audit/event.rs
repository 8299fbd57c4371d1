//! What the audit log records: who acted and what happened.
//!
//! Invariant: an [`AuditEvent`] has no field that can hold a password, code,
//! token, hash or key; free text is bounded so a caller cannot bloat the log.

use serde::Serialize;

use crate::transport::PeerCredentials;

/// Longest RPC path kept in an entry; longer ones are cut.
const MAX_RPC_PATH_CHARS: usize = 200;

/// Who caused an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The socket peer, from the kernel. `None` for the daemon itself.
    pub peer: Option<PeerCredentials>,
    /// The authenticated occcd user, if any.
    pub user: Option<String>,
}

impl Actor {
    /// The daemon acting on its own behalf.
    #[must_use]
    pub fn daemon() -> Self {
        Self::default()
    }

    /// An unauthenticated socket peer.
    #[must_use]
    pub fn peer(peer: Option<PeerCredentials>) -> Self {
        Self { peer, user: None }
    }
}

/// Something worth recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// The daemon is ready to serve.
    DaemonStarted {
        /// occcd's version.
        version: String,
        /// Where the master key came from.
        key_source: String,
    },
    /// The daemon stopped serving cleanly.
    DaemonStopped {
        /// The signal or reason.
        reason: String,
    },
    /// A call was refused before reaching its handler.
    CallRefused {
        /// The RPC path, cut to a bounded length.
        rpc: String,
        /// Why, in words.
        reason: String,
    },
}

impl AuditEvent {
    /// A refused call; `rpc` is cut to a bounded length.
    #[must_use]
    pub fn call_refused(rpc: &str, reason: &str) -> Self {
        Self::CallRefused {
            rpc: rpc.chars().take(MAX_RPC_PATH_CHARS).collect(),
            reason: reason.to_owned(),
        }
    }

    /// The `kind` column.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DaemonStarted { .. } => "daemon_started",
            Self::DaemonStopped { .. } => "daemon_stopped",
            Self::CallRefused { .. } => "call_refused",
        }
    }

    /// The `detail` column: the event as JSON.
    #[must_use]
    pub fn detail_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"kind\":\"{}\"}}", self.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_rpc_path_is_bounded() {
        let event = AuditEvent::call_refused(&"x".repeat(10_000), "no session");
        assert!(event.detail_json().len() < 400);
    }

    #[test]
    fn detail_names_the_kind() {
        let event = AuditEvent::call_refused("/occc.v1.Audit/VerifyChain", "no session");
        assert!(event.detail_json().contains("\"kind\":\"call_refused\""));
        assert_eq!(event.kind(), "call_refused");
    }
}
