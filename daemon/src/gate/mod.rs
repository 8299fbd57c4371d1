//! Authentication gate: every request passes here before any handler.
//!
//! Invariant: deny by default. A request reaches its handler only if its path
//! is in the policy table, the kernel told us who the peer is, and the row's
//! requirement (session, permission, elevation) is met by a session that the
//! same uid opened; every refusal is audited with the peer's credentials.

mod layer;
mod policy;

use std::{fmt, sync::Arc};

pub use layer::GateLayer;
pub use policy::{Access, POLICY_TABLE, RpcPolicy, policy_for};

use crate::{
    audit::{AccountAction, Actor, AuditEvent, AuditLog, bounded_rpc},
    auth::{ActingUser, AuthEngine, AuthError, role::Permission, role::Role, sessions::Session},
    clock::Clock,
    integrity::QuarantineLock,
    transport::PeerCredentials,
};

/// The metadata key that carries `Bearer <session token>`.
pub const AUTHORIZATION: &str = "authorization";

/// Who made an admitted call that needed a session.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's session.
    pub session: Session,
    /// The socket peer.
    pub peer: PeerCredentials,
}

impl Caller {
    /// The caller as the actor of an account operation.
    #[must_use]
    pub fn acting(&self) -> ActingUser<'_> {
        ActingUser {
            session: &self.session,
            peer: self.peer,
        }
    }
}

/// Why the gate turned a request away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The connection carried no kernel credentials.
    NoPeerCredentials,
    /// The path is not in the policy table.
    UnknownRpc,
    /// The RPC needs a session and the request has no token.
    NoSession,
    /// The token was not accepted.
    BadSession(AuthError),
    /// The role lacks the permission.
    Forbidden {
        /// The caller.
        username: String,
        /// The caller's role.
        role: Role,
        /// The permission needed.
        permission: Permission,
    },
    /// The session is not elevated.
    ElevationRequired {
        /// The caller.
        username: String,
    },
    /// A quarantine locks this RPC.
    Quarantined {
        /// The caller.
        username: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPeerCredentials => f.write_str("no peer credentials"),
            Self::UnknownRpc => f.write_str("unknown rpc"),
            Self::NoSession => f.write_str("no session"),
            Self::BadSession(err) => write!(f, "session refused: {err}"),
            Self::Forbidden {
                role, permission, ..
            } => write!(f, "role {role} lacks {}", permission.name()),
            Self::ElevationRequired { .. } => f.write_str("re-authentication required"),
            Self::Quarantined { .. } => f.write_str("locked while a container is quarantined"),
        }
    }
}

/// Decides whether a request may proceed.
#[derive(Debug, Clone)]
pub struct Gate {
    audit: AuditLog,
    auth: Arc<AuthEngine>,
    clock: Arc<dyn Clock>,
    lock: QuarantineLock,
}

impl Gate {
    /// A gate that checks sessions with `auth`, holds locked RPCs while
    /// `lock` is set, and records refusals in `audit`.
    #[must_use]
    pub fn new(
        audit: AuditLog,
        auth: Arc<AuthEngine>,
        clock: Arc<dyn Clock>,
        lock: QuarantineLock,
    ) -> Self {
        Self {
            audit,
            auth,
            clock,
            lock,
        }
    }

    /// Admits or refuses a call to `path` from `peer` carrying `token`.
    pub async fn admit(
        &self,
        path: &str,
        peer: Option<PeerCredentials>,
        token: Option<&str>,
    ) -> Result<Option<Caller>, Refusal> {
        let decision = self.decide(path, peer, token);
        if let Err(refusal) = &decision {
            tracing::info!(%refusal, "call refused");
            let (actor, event) = match refusal {
                Refusal::Forbidden { username, .. }
                | Refusal::ElevationRequired { username }
                | Refusal::Quarantined { username } => (
                    Actor::user(peer, username),
                    AuditEvent::Account {
                        action: AccountAction::PermissionDenied,
                        subject: Some(username.clone()),
                        detail: Some(format!("{}: {refusal}", bounded_rpc(path))),
                    },
                ),
                _ => (
                    Actor::peer(peer),
                    AuditEvent::call_refused(path, &refusal.to_string()),
                ),
            };
            self.audit.record_or_log(actor, event).await;
        }
        decision
    }

    fn decide(
        &self,
        path: &str,
        peer: Option<PeerCredentials>,
        token: Option<&str>,
    ) -> Result<Option<Caller>, Refusal> {
        let peer = peer.ok_or(Refusal::NoPeerCredentials)?;
        let policy = policy_for(path).ok_or(Refusal::UnknownRpc)?;
        if policy.access == Access::Anonymous {
            return Ok(None);
        }
        let token = token.ok_or(Refusal::NoSession)?;
        let session = self
            .auth
            .authenticate(token, peer.uid)
            .map_err(Refusal::BadSession)?;
        if let Access::Permission(permission) = policy.access
            && !session.role.allows(permission)
        {
            return Err(Refusal::Forbidden {
                username: session.username,
                role: session.role,
                permission,
            });
        }
        if policy.elevation && !session.is_elevated(self.clock.now()) {
            return Err(Refusal::ElevationRequired {
                username: session.username,
            });
        }
        if policy.locked_in_quarantine && self.lock.is_locked() {
            return Err(Refusal::Quarantined {
                username: session.username,
            });
        }
        Ok(Some(Caller { session, peer }))
    }
}
