//! Authentication gate: every request passes here before any handler.
//!
//! Invariant: deny by default. A request reaches its handler only if its path
//! is in the policy table, the kernel told us who the peer is, and the row's
//! requirement (session, permission, elevation) is met by a session that the
//! same uid opened; every refusal is counted, and audited with the peer's
//! credentials within the uid's budget ([`refusal_budget`]).

mod layer;
mod policy;
pub mod refusal_budget;

use std::{fmt, sync::Arc};

pub use layer::{BearerHeader, GateLayer, GatedService, bearer_token};
pub use policy::{Access, Elevation, InQuarantine, POLICY_TABLE, RpcPolicy, policy_for};
pub use refusal_budget::{RefusalBudget, record_owed};
use refusal_budget::{RefusalClass, Verdict};

use crate::{
    audit::{AccountAction, Actor, AuditEvent, AuditLog, bounded_rpc},
    auth::{ActingUser, AuthEngine, AuthError, role::Permission, role::Role, sessions::Session},
    clock::{Clock, UnixMillis},
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
    /// The row that admitted the call (streams re-check it while they run).
    pub policy: &'static RpcPolicy,
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
    /// The request carries more than one `authorization` header.
    AmbiguousAuthorization,
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
    /// The session is elevated, but not by re-proving the password.
    PasswordElevationRequired {
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
            Self::AmbiguousAuthorization => f.write_str("more than one authorization header"),
            Self::BadSession(err) => write!(f, "session refused: {err}"),
            Self::Forbidden {
                role, permission, ..
            } => write!(f, "role {role} lacks {}", permission.name()),
            Self::ElevationRequired { .. } => f.write_str("re-authentication required"),
            Self::PasswordElevationRequired { .. } => {
                f.write_str("re-authentication with the password required")
            }
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
    refusals: Arc<RefusalBudget>,
}

impl Gate {
    /// A gate that checks sessions with `auth`, holds locked RPCs while
    /// `lock` is set, and records refusals in `audit` as `refusals` allows.
    #[must_use]
    pub fn new(
        audit: AuditLog,
        auth: Arc<AuthEngine>,
        clock: Arc<dyn Clock>,
        lock: QuarantineLock,
        refusals: Arc<RefusalBudget>,
    ) -> Self {
        Self {
            audit,
            auth,
            clock,
            lock,
            refusals,
        }
    }

    /// Admits or refuses a call to `path` from `peer` carrying `authorization`.
    pub async fn admit(
        &self,
        path: &str,
        peer: Option<PeerCredentials>,
        authorization: Authorization<'_>,
    ) -> Result<Option<Caller>, Refusal> {
        let decision = self.decide(path, peer, authorization);
        if let Err(refusal) = &decision {
            let class = match refusal {
                Refusal::Forbidden { .. }
                | Refusal::ElevationRequired { .. }
                | Refusal::PasswordElevationRequired { .. }
                | Refusal::Quarantined { .. } => RefusalClass::SignedIn,
                _ => RefusalClass::Anonymous,
            };
            let verdict = self.refusals.judge(peer, class, self.clock.now());
            if let Verdict::Audit {
                not_audited_before,
                last_this_minute,
            } = verdict
            {
                tracing::info!(%refusal, not_audited_before, "call refused");
                let reason = with_budget_note(refusal, not_audited_before, last_this_minute);
                self.audit_refusal(path, peer, refusal, reason).await;
            }
        }
        decision
    }

    async fn audit_refusal(
        &self,
        path: &str,
        peer: Option<PeerCredentials>,
        refusal: &Refusal,
        reason: String,
    ) {
        let (actor, event) = match refusal {
            Refusal::Forbidden { username, .. }
            | Refusal::ElevationRequired { username }
            | Refusal::PasswordElevationRequired { username }
            | Refusal::Quarantined { username } => (
                Actor::user(peer, username),
                AuditEvent::Account {
                    action: AccountAction::PermissionDenied,
                    subject: Some(username.clone()),
                    detail: Some(format!("{}: {reason}", bounded_rpc(path))),
                },
            ),
            _ => (Actor::peer(peer), AuditEvent::call_refused(path, &reason)),
        };
        self.audit.record_or_log(actor, event).await;
    }

    fn decide(
        &self,
        path: &str,
        peer: Option<PeerCredentials>,
        authorization: Authorization<'_>,
    ) -> Result<Option<Caller>, Refusal> {
        let peer = peer.ok_or(Refusal::NoPeerCredentials)?;
        let policy = policy_for(path).ok_or(Refusal::UnknownRpc)?;
        if policy.access == Access::Anonymous {
            return Ok(None);
        }
        let token = match authorization {
            Authorization::None => return Err(Refusal::NoSession),
            Authorization::Ambiguous => return Err(Refusal::AmbiguousAuthorization),
            Authorization::Bearer(token) => token,
        };
        let session = self
            .auth
            .authenticate(token, peer.uid)
            .map_err(Refusal::BadSession)?;
        let caller = Caller {
            session,
            peer,
            policy,
        };
        self.still_allowed(&caller)?;
        if policy.in_quarantine == InQuarantine::Locked && self.lock.is_locked() {
            return Err(Refusal::Quarantined {
                username: caller.session.username,
            });
        }
        Ok(Some(caller))
    }

    /// Whether `caller`'s session (as it stands) still meets its row's role
    /// and elevation requirements.
    pub fn still_allowed(&self, caller: &Caller) -> Result<(), Refusal> {
        meets(caller.policy, &caller.session, self.clock.now())
    }
}

/// `refusal`'s reason, with what the refusal budget adds: how many of this
/// uid's refusals before it were counted but not audited, and whether more
/// will be.
fn with_budget_note(refusal: &Refusal, not_audited_before: u64, last_this_minute: bool) -> String {
    let mut reason = refusal.to_string();
    if not_audited_before > 0 {
        reason.push_str(&format!(
            "; {not_audited_before} earlier refusals like it of this OS user were counted, not audited"
        ));
    }
    if last_this_minute {
        reason.push_str(
            "; further refusals like it of this OS user this minute are counted, not audited one by one (audit.refusals_per_minute_per_uid)",
        );
    }
    reason
}

/// Whether `session` meets `policy`'s role and elevation requirements at
/// `now` (quarantine locks aside).
pub fn meets(policy: &RpcPolicy, session: &Session, now: UnixMillis) -> Result<(), Refusal> {
    if let Access::Permission(permission) = policy.access
        && !session.role.allows(permission)
    {
        return Err(Refusal::Forbidden {
            username: session.username.clone(),
            role: session.role,
            permission,
        });
    }
    let username = || session.username.clone();
    match (policy.elevation, session.elevation_at(now)) {
        (Elevation::None, _) => Ok(()),
        (Elevation::Any, None) => Err(Refusal::ElevationRequired {
            username: username(),
        }),
        // Not elevated, or not with the password: either way say the whole
        // requirement, so a client asks for password and code at once.
        (Elevation::WithPassword, None) => Err(Refusal::PasswordElevationRequired {
            username: username(),
        }),
        (Elevation::WithPassword, Some(elevation)) if !elevation.method.proves_password() => {
            Err(Refusal::PasswordElevationRequired {
                username: username(),
            })
        }
        (Elevation::Any | Elevation::WithPassword, Some(_)) => Ok(()),
    }
}

/// What a request's `authorization` metadata holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// No usable `Bearer` token.
    None,
    /// More than one `authorization` header: refused rather than guessed.
    Ambiguous,
    /// One `Bearer` token.
    Bearer(&'a str),
}
