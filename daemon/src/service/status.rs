//! The one place where daemon errors become gRPC statuses.
//!
//! Invariant: every status message says what happened and what to do, and
//! never contains a secret or internal detail an attacker could use.

use tonic::{Code, Status, metadata::MetadataValue};

use crate::{
    audit::AuditError,
    auth::AuthError,
    backup::BackupError,
    gate::Refusal,
    integrity::{IntegrityError, engine::EngineError, snapshot::SnapshotError},
    openclaw::ConfigError,
    skills::SkillError,
    store::StoreError,
    transport::uid_shares::Refused,
};

/// RESOURCE_EXHAUSTED for a call refused a place of the pool `what` (a
/// plural, e.g. "audit exports running") under a per-uid share.
#[must_use]
pub fn share_refused(what: &str, refused: Refused) -> Status {
    Status::resource_exhausted(match refused {
        Refused::Uid { bound } => {
            format!(
                "your OS user holds {bound} {what} already; close one (or let it finish) and retry"
            )
        }
        Refused::Total { bound } => {
            format!("occcd holds {bound} {what} for all users already; retry in a moment")
        }
        Refused::Kept { bound } => format!(
            "{bound} {what} are open to your role and all are taken (the rest are kept for \
             administrators); retry in a moment"
        ),
    })
}

/// A long-lived stream refused for want of a place (see
/// `session_bound::STREAMS_PER_UID`).
impl From<Refused> for Status {
    fn from(refused: Refused) -> Self {
        share_refused(
            "long-lived streams (watches, exports, log follows, backups)",
            refused,
        )
    }
}

/// Trailing metadata key naming why a call was denied, for frontends.
pub const DENIAL_REASON: &str = "occc-denial";

/// The status for a request the gate turned away.
#[must_use]
pub fn refusal_status(refusal: &Refusal, rpc: &str) -> Status {
    let (status, reason) = match refusal {
        Refusal::NoPeerCredentials => (
            Status::unauthenticated(
                "the connection has no peer credentials; connect over occcd's Unix socket",
            ),
            "no-peer-credentials",
        ),
        Refusal::UnknownRpc => (
            Status::unimplemented(format!("occcd serves no RPC named {rpc}")),
            "unknown-rpc",
        ),
        Refusal::NoSession => (
            Status::unauthenticated(format!(
                "{rpc} needs a logged-in session; log in and send the session token as \"authorization: Bearer <token>\""
            )),
            "login-required",
        ),
        Refusal::AmbiguousAuthorization => (
            Status::unauthenticated(
                "send exactly one \"authorization: Bearer <token>\" header; this request has several",
            ),
            "login-required",
        ),
        Refusal::BadSession(err) => (Status::unauthenticated(err.to_string()), "login-required"),
        Refusal::Forbidden {
            role, permission, ..
        } => (
            Status::permission_denied(format!(
                "your role ({role}) does not allow this: it needs the {} permission",
                permission.name()
            )),
            "forbidden",
        ),
        Refusal::ElevationRequired { .. } => (
            Status::permission_denied(
                "re-authentication required: call occc.v1.Auth/Elevate with a TOTP code, then retry",
            ),
            "elevation-required",
        ),
        Refusal::PasswordElevationRequired { .. } => (
            Status::permission_denied(
                "this changes credentials or grants access, which needs re-authentication with your password: call occc.v1.Auth/Elevate with password and a TOTP code (or a recovery code), then retry",
            ),
            "password-elevation-required",
        ),
        Refusal::Quarantined { .. } => (
            Status::failed_precondition(
                "locked: a container is quarantined; a super-admin must release it (occc.v1.Integrity/ReleaseQuarantine)",
            ),
            "quarantined",
        ),
    };
    with_reason(status, reason)
}

fn with_reason(mut status: Status, reason: &'static str) -> Status {
    status
        .metadata_mut()
        .insert(DENIAL_REASON, MetadataValue::from_static(reason));
    status
}

/// Trailing metadata key: milliseconds to wait before retrying.
pub const RETRY_AFTER_MS: &str = "occc-retry-after-ms";

fn with_retry_after(status: Status, reason: &'static str, wait: std::time::Duration) -> Status {
    let mut status = with_reason(status, reason);
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    status
        .metadata_mut()
        .insert(RETRY_AFTER_MS, MetadataValue::from(millis));
    status
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::InvalidInput { .. } | AuthError::PasswordPolicy(_) => {
                Status::invalid_argument(message)
            }
            AuthError::BadCredentials | AuthError::BadToken(_) => Status::unauthenticated(message),
            AuthError::Session(_) => {
                with_reason(Status::unauthenticated(message), "login-required")
            }
            AuthError::AccountChanged => Status::aborted(message),
            AuthError::Throttled { retry_after } => with_retry_after(
                Status::resource_exhausted(message),
                "throttled",
                retry_after,
            ),
            AuthError::Locked { retry_after } => with_retry_after(
                Status::resource_exhausted(message),
                "account-locked",
                retry_after,
            ),
            AuthError::AttemptInProgress | AuthError::PasswordCheckBusy => {
                Status::resource_exhausted(message)
            }
            AuthError::NoSuchUser(_) | AuthError::NoSuchSession(_) => Status::not_found(message),
            AuthError::UserExists(_) => Status::already_exists(message),
            AuthError::BootstrapClosed
            | AuthError::LastSuperAdmin(_)
            | AuthError::WrongState(_) => Status::failed_precondition(message),
            AuthError::NotAllowed(_) | AuthError::OsAccountRefused(_) => {
                Status::permission_denied(message)
            }
            AuthError::BiometricUnavailable(_) => Status::failed_precondition(message),
            AuthError::BiometricRejected(_) => Status::unauthenticated(message),
            AuthError::BiometricTimedOut(_) => Status::deadline_exceeded(message),
            AuthError::BiometricBusy | AuthError::StoreFull(_) => {
                Status::resource_exhausted(message)
            }
            AuthError::StoreRefused(_) => Status::unavailable(message),
            AuthError::Internal(_) => {
                Status::new(Code::Internal, "internal error; see the daemon's log")
            }
        }
    }
}

impl From<AuditError> for Status {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Timeout(_) | AuditError::WriterStopped => Status::unavailable(
                "the audit log is not accepting entries right now; retry shortly",
            ),
            AuditError::BadQuery(message) => Status::invalid_argument(message),
            AuditError::NotTaken(message) => Status::unavailable(message),
            AuditError::Commit(_) | AuditError::Read(_) => {
                tracing::error!(error = %err, "audit log failure");
                Status::internal("the audit log could not be read or written; see the daemon's log")
            }
        }
    }
}

impl From<BackupError> for Status {
    fn from(err: BackupError) -> Self {
        match err {
            BackupError::Busy(message) => Status::resource_exhausted(message),
            BackupError::NoRoom { .. } | BackupError::Store(StoreError::Full) => {
                Status::resource_exhausted(err.to_string())
            }
            BackupError::Store(StoreError::WritesRefused | StoreError::Io(_)) => {
                Status::unavailable(err.to_string())
            }
            BackupError::NotNow(_)
            | BackupError::Refused(_)
            | BackupError::File { .. }
            | BackupError::Store(_) => {
                tracing::error!(error = %err, "backup failed");
                Status::internal("the backup could not be made; see the daemon's log")
            }
        }
    }
}

impl From<IntegrityError> for Status {
    fn from(err: IntegrityError) -> Self {
        let message = err.to_string();
        match err {
            IntegrityError::UnknownContainer(_)
            | IntegrityError::Engine(EngineError::NotFound(_))
            | IntegrityError::Snapshot(SnapshotError::NotFound(_)) => Status::not_found(message),
            IntegrityError::Engine(EngineError::Unreachable(_) | EngineError::TooOld(_))
            | IntegrityError::Snapshot(SnapshotError::Engine(_)) => Status::unavailable(message),
            IntegrityError::Engine(EngineError::Refused(_))
            | IntegrityError::NotQuarantined(_)
            | IntegrityError::Refused(_) => Status::failed_precondition(message),
            IntegrityError::InvalidInput { .. } => Status::invalid_argument(message),
            // Evidence that fails its own authentication: say which, loudly.
            IntegrityError::Snapshot(SnapshotError::Crypto(_)) => Status::data_loss(message),
            IntegrityError::Store(StoreError::Full) => Status::resource_exhausted(message),
            IntegrityError::Store(StoreError::WritesRefused | StoreError::Io(_)) => {
                Status::unavailable(message)
            }
            IntegrityError::Snapshot(_) | IntegrityError::Store(_) => {
                tracing::error!(error = %message, "integrity storage failure");
                Status::internal(
                    "integrity state could not be read or stored; see the daemon's log",
                )
            }
        }
    }
}

impl From<SkillError> for Status {
    fn from(err: SkillError) -> Self {
        let message = err.to_string();
        match err {
            SkillError::BadArchive(_)
            | SkillError::InvalidInput { .. }
            | SkillError::TooLarge(_) => Status::invalid_argument(message),
            SkillError::Busy(_) | SkillError::Store(StoreError::Full) => {
                Status::resource_exhausted(message)
            }
            SkillError::Store(StoreError::WritesRefused | StoreError::Io(_)) => {
                Status::unavailable(message)
            }
            SkillError::NotFound(_) => Status::not_found(message),
            SkillError::Refused(_) => Status::failed_precondition(message),
            SkillError::Disk(_) | SkillError::Store(_) => {
                tracing::error!(error = %message, "skill storage failure");
                Status::internal(format!(
                    "skill files or state could not be written: {message}"
                ))
            }
        }
    }
}

/// Trailing metadata key holding the config's current version on ABORTED.
pub const CONFIG_VERSION: &str = "occc-config-version";

impl From<ConfigError> for Status {
    fn from(err: ConfigError) -> Self {
        let message = err.to_string();
        match err {
            ConfigError::UnknownContainer(_) | ConfigError::NoVersion { .. } => {
                Status::not_found(message)
            }
            ConfigError::InvalidInput { .. } | ConfigError::Parse(_) | ConfigError::Schema(_) => {
                Status::invalid_argument(message)
            }
            ConfigError::VersionMismatch { current, .. } => {
                let mut status = Status::aborted(message);
                if let Ok(value) = MetadataValue::try_from(current.as_str()) {
                    status.metadata_mut().insert(CONFIG_VERSION, value);
                }
                status
            }
            ConfigError::NeedsSuperAdmin(_) => {
                with_reason(Status::permission_denied(message), "super-admin-required")
            }
            ConfigError::Unsafe(_) => Status::failed_precondition(message),
            ConfigError::Quarantined => {
                with_reason(Status::failed_precondition(message), "quarantined")
            }
            ConfigError::NoLongerAllowed(_) => {
                with_reason(Status::permission_denied(message), "elevation-required")
            }
            ConfigError::Disk(ref file_error) => {
                tracing::error!(error = %message, "OpenClaw config write failed");
                match file_error {
                    crate::openclaw::file::ConfigFileError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::StorageFull =>
                    {
                        Status::resource_exhausted(message)
                    }
                    crate::openclaw::file::ConfigFileError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
                    {
                        Status::failed_precondition(message)
                    }
                    _ => Status::internal(message),
                }
            }
            ConfigError::Store(StoreError::Full) => Status::resource_exhausted(message),
            ConfigError::Store(StoreError::WritesRefused | StoreError::Io(_)) => {
                Status::unavailable(message)
            }
            ConfigError::Sealed(_) | ConfigError::Store(_) | ConfigError::Internal(_) => {
                tracing::error!(error = %message, "OpenClaw config versions failure");
                Status::internal(format!(
                    "config versions could not be read or stored: {message}"
                ))
            }
        }
    }
}
