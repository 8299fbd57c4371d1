//! Authentication gate: every request passes here before any handler.
//!
//! Invariant: deny by default. A request reaches its handler only if its path
//! is in the policy table, the kernel told us who the peer is, and the table's
//! requirement is met; every refusal is audited with the peer's credentials.

mod layer;
mod policy;

use std::fmt;

pub use layer::GateLayer;
pub use policy::{Access, POLICY_TABLE, RpcPolicy, policy_for};

use crate::{
    audit::{Actor, AuditEvent, AuditLog},
    transport::PeerCredentials,
};

/// Why the gate turned a request away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The connection carried no kernel credentials.
    NoPeerCredentials,
    /// The path is not in the policy table.
    UnknownRpc,
    /// The RPC needs a session and the request has none.
    NoSession,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoPeerCredentials => "no peer credentials",
            Self::UnknownRpc => "unknown rpc",
            Self::NoSession => "no session",
        })
    }
}

/// Decides whether a request may proceed.
#[derive(Debug, Clone)]
pub struct Gate {
    audit: AuditLog,
}

impl Gate {
    /// A gate that records refusals in `audit`.
    #[must_use]
    pub fn new(audit: AuditLog) -> Self {
        Self { audit }
    }

    /// Admits or refuses a call to `path` from `peer`.
    pub async fn admit(&self, path: &str, peer: Option<PeerCredentials>) -> Result<(), Refusal> {
        let decision = match (policy_for(path), peer) {
            (_, None) => Err(Refusal::NoPeerCredentials),
            (None, Some(_)) => Err(Refusal::UnknownRpc),
            (Some(policy), Some(_)) => match policy.access {
                Access::Anonymous => Ok(()),
                Access::Session => Err(Refusal::NoSession),
            },
        };
        if let Err(refusal) = decision {
            tracing::info!(%refusal, "call refused");
            self.audit
                .record_or_log(
                    Actor::peer(peer),
                    AuditEvent::call_refused(path, &refusal.to_string()),
                )
                .await;
        }
        decision
    }
}
