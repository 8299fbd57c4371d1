//! The one place where daemon errors become gRPC statuses.
//!
//! Invariant: every status message says what happened and what to do, and
//! never contains a secret or internal detail an attacker could use.

use tonic::Status;

use crate::{audit::AuditError, gate::Refusal};

/// The status for a request the gate turned away.
#[must_use]
pub fn refusal_status(refusal: Refusal, rpc: &str) -> Status {
    match refusal {
        Refusal::NoPeerCredentials => Status::unauthenticated(
            "the connection has no peer credentials; connect over occcd's Unix socket",
        ),
        Refusal::UnknownRpc => Status::unimplemented(format!("occcd serves no RPC named {rpc}")),
        Refusal::NoSession => Status::unauthenticated(format!(
            "{rpc} needs a logged-in session; log in and send the session token"
        )),
    }
}

impl From<AuditError> for Status {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Timeout(_) | AuditError::WriterStopped => Status::unavailable(
                "the audit log is not accepting entries right now; retry shortly",
            ),
            AuditError::Commit(_) | AuditError::Read(_) => {
                tracing::error!(error = %err, "audit log failure");
                Status::internal("the audit log could not be read or written; see the daemon's log")
            }
        }
    }
}
