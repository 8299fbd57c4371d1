//! What the audit log records: who acted and what happened.
//!
//! Invariant: an [`AuditEvent`] has no field that can hold a password, code,
//! token, hash or key; free text is bounded so a caller cannot bloat the log.

use serde::Serialize;

use crate::transport::PeerCredentials;

/// Longest RPC path kept in an entry; longer ones are cut.
const MAX_RPC_PATH_CHARS: usize = 200;
/// Longest finding summary kept in an entry; longer ones are cut.
const MAX_SUMMARY_CHARS: usize = 500;

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

    /// A socket peer acting as the occcd user `user`.
    #[must_use]
    pub fn user(peer: Option<PeerCredentials>, user: &str) -> Self {
        Self {
            peer,
            user: Some(user.to_owned()),
        }
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
    /// The service manager (SIGHUP) asked the daemon to reread its config.
    ConfigReloaded {
        /// Settings now in force with their new values (dotted keys).
        applied: Vec<String>,
        /// Settings changed in the file that need a restart (dotted keys).
        refused: Vec<String>,
        /// Why nothing was applied, when the file was unusable.
        error: Option<String>,
    },
    /// The audit log could not commit from `since_unix_ms` until this entry:
    /// entries of that time may be lost (each loss was logged).
    AuditGap {
        /// Queue time of the first entry that could not be committed.
        since_unix_ms: i64,
    },
    /// A call was refused before reaching its handler.
    CallRefused {
        /// The RPC path, cut to a bounded length.
        rpc: String,
        /// Why, in words.
        reason: String,
    },
    /// Something happened to a monitored container or its environment.
    Integrity {
        /// What.
        action: IntegrityAction,
        /// The configured container name.
        container: String,
        /// Extra facts: finding, isolation steps, note — never a secret.
        detail: Option<String>,
    },
    /// The integrity monitor recorded a finding (its evidence is in the
    /// findings history).
    FindingRecorded {
        /// The configured container name.
        container: String,
        /// Which check, e.g. `runtime.privileged`.
        check: String,
        /// `info`, `low`, `medium`, `high` or `critical`.
        severity: String,
        /// One line a person can act on (an exec names the program, not its
        /// arguments; at most 500 characters).
        summary: String,
    },
    /// A watched container's health changed.
    ContainerHealthChanged {
        /// The configured container name.
        container: String,
        /// `unknown`, `healthy`, `degraded` or `compromised`.
        from: String,
        /// The same words.
        to: String,
        /// Why it is what it is now.
        reason: String,
    },
    /// An event output fell further behind than `events.max_backlog` and
    /// skipped entries `first` to `last` (they stay in the audit log).
    EventsSkipped {
        /// `journald`, `syslog` or `webhook`.
        output: String,
        /// First entry skipped.
        first: u64,
        /// Last entry skipped.
        last: u64,
    },
    /// `occcd restore` put a backup in place of the store: entries after
    /// `backup_audit_head` up to `replaced_audit_head` are in the replaced
    /// store (kept beside it), not in this chain.
    StoreRestored {
        /// When the backup was made.
        backup_created_at_unix_ms: i64,
        /// The backup's last entry (this entry follows it).
        backup_audit_head: i64,
        /// The replaced store's last entry, if it opened.
        replaced_audit_head: Option<i64>,
        /// SHA-256 of the backup's database file (hex).
        backup_sha256: String,
    },
    /// A backup of the store was handed out over the socket.
    StoreBackedUp {
        /// The backup's last entry (this one follows it).
        audit_head: i64,
        /// SHA-256 of the database in it (hex).
        database_sha256: String,
        /// Bytes of the backup file.
        file_bytes: u64,
    },
    /// `occcd rekey` put the store under a new master key: the database
    /// re-encrypted, `resealed_values` sealed values re-sealed, the data
    /// root wrapped under the new key (audit and token keys unchanged).
    MasterKeyRotated {
        /// How many sealed values were re-sealed.
        resealed_values: u64,
        /// Where the new key is kept (a file path or a credential name).
        new_key_custody: String,
    },
    /// The store stopped taking changes: its master key's file is gone or
    /// holds another key (a restart could not open what is written now).
    StoreWritesRefused {
        /// What is wrong with the key file (never key material).
        reason: String,
    },
    /// The store takes changes again: the key that opens it is back.
    StoreWritesResumed {
        /// The key file.
        key_file: String,
    },
    /// Something happened to an account or session.
    Account {
        /// What.
        action: AccountAction,
        /// The account acted on (validated username), if any.
        subject: Option<String>,
        /// Extra facts: method, role, reason — never a secret.
        detail: Option<String>,
    },
    /// Something happened to a skill.
    Skill {
        /// What happened.
        action: SkillAction,
        /// The skill's name.
        name: String,
        /// Its tree hash.
        tree_hash: String,
        /// Level, note or reason.
        detail: Option<String>,
    },
    /// Something happened to OpenClaw's config of a container.
    Config {
        /// What happened.
        action: ConfigAction,
        /// The watched container.
        container: String,
        /// The stored version it concerns (0: none).
        number: i64,
        /// Note, lines changed, policy paths — never the text.
        detail: Option<String>,
    },
}

/// Account and session events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    /// The first super-admin was created (pending TOTP).
    BootstrapStarted,
    /// A person set their password and received a TOTP enrolment.
    EnrollmentStarted,
    /// TOTP confirmed; the account is active.
    EnrollmentCompleted,
    /// Login succeeded.
    LoginSucceeded,
    /// Login failed.
    LoginFailed,
    /// Login refused before checking (delay or lock).
    LoginThrottled,
    /// Repeated failures locked the account.
    AccountLocked,
    /// A super-admin lifted a lock.
    AccountUnlocked,
    /// The session ended at its owner's request.
    LoggedOut,
    /// Sessions were ended by an admin, a cap or a change.
    SessionsRevoked,
    /// A session was elevated.
    Elevated,
    /// Elevation failed.
    ElevationFailed,
    /// A call was refused by the policy (role or elevation).
    PermissionDenied,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// New recovery codes replaced the old set.
    RecoveryCodesRegenerated,
    /// A password was changed.
    PasswordChanged,
    /// A new TOTP secret was confirmed.
    TotpReenrolled,
    /// A super-admin reset a user's TOTP.
    TotpReset,
    /// A user was created.
    UserCreated,
    /// A user's role changed.
    RoleChanged,
    /// A user was disabled.
    UserDisabled,
    /// A user was enabled.
    UserEnabled,
    /// A user was deleted.
    UserDeleted,
    /// A device-bound key was registered.
    DeviceKeyRegistered,
    /// A device-bound key was revoked.
    DeviceKeyRevoked,
    /// A user's OS account link (for PAM login) was set or removed.
    OsAccountLinked,
}

impl AccountAction {
    /// The `kind` column for this action.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::BootstrapStarted => "bootstrap_started",
            Self::EnrollmentStarted => "enrollment_started",
            Self::EnrollmentCompleted => "enrollment_completed",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::LoggedOut => "logged_out",
            Self::SessionsRevoked => "sessions_revoked",
            Self::Elevated => "elevated",
            Self::ElevationFailed => "elevation_failed",
            Self::PermissionDenied => "permission_denied",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::PasswordChanged => "password_changed",
            Self::TotpReenrolled => "totp_reenrolled",
            Self::TotpReset => "totp_reset",
            Self::UserCreated => "user_created",
            Self::RoleChanged => "role_changed",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserDeleted => "user_deleted",
            Self::DeviceKeyRegistered => "device_key_registered",
            Self::DeviceKeyRevoked => "device_key_revoked",
            Self::OsAccountLinked => "os_account_linked",
        }
    }
}

/// Container integrity and environment events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityAction {
    /// A baseline was pinned.
    BaselinePinned,
    /// The container was quarantined (paused, isolated, sessions revoked).
    QuarantineStarted,
    /// A quarantined container's isolation was checked again and fixed.
    IsolationChecked,
    /// A super-admin released a quarantine.
    QuarantineReleased,
    /// An admin closed open event findings, with a note.
    FindingsAcknowledged,
    /// A forensic snapshot was stored.
    SnapshotWritten,
    /// A forensic snapshot could not be stored.
    SnapshotFailed,
    /// An operator started, stopped or restarted the environment.
    EnvironmentChanged,
    /// Start refused by the non-root policy or a quarantine.
    EnvironmentRefused,
}

impl IntegrityAction {
    /// The `kind` column for this action.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::BaselinePinned => "baseline_pinned",
            Self::QuarantineStarted => "quarantine_started",
            Self::IsolationChecked => "isolation_checked",
            Self::QuarantineReleased => "quarantine_released",
            Self::FindingsAcknowledged => "findings_acknowledged",
            Self::SnapshotWritten => "snapshot_written",
            Self::SnapshotFailed => "snapshot_failed",
            Self::EnvironmentChanged => "environment_changed",
            Self::EnvironmentRefused => "environment_refused",
        }
    }
}

/// What happened to a skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillAction {
    /// Submitted and assessed.
    Submitted,
    /// Approved by one of two needed super-admins.
    ApprovalRecorded,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Revoked.
    Revoked,
    /// Installed into OpenClaw's skills folder.
    Installed,
    /// Removed from OpenClaw's skills folder.
    Uninstalled,
    /// Installing or removing failed.
    InstallFailed,
}

impl SkillAction {
    /// The `kind` column for this action.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::Submitted => "skill_submitted",
            Self::ApprovalRecorded => "skill_approval_recorded",
            Self::Approved => "skill_approved",
            Self::Rejected => "skill_rejected",
            Self::Revoked => "skill_revoked",
            Self::Installed => "skill_installed",
            Self::Uninstalled => "skill_uninstalled",
            Self::InstallFailed => "skill_install_failed",
        }
    }
}

/// What happened to OpenClaw's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigAction {
    /// The file found at first start was stored as version 1.
    Imported,
    /// Edited through occcd.
    Edited,
    /// A stored version was written back.
    Restored,
    /// A text changed outside occcd was stored before being replaced.
    FoundOutside,
    /// Writing the file or its version failed; the old file stands.
    WriteFailed,
}

impl ConfigAction {
    /// The `kind` column for this action.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::Imported => "config_imported",
            Self::Edited => "config_edited",
            Self::Restored => "config_restored",
            Self::FoundOutside => "config_found_outside",
            Self::WriteFailed => "config_write_failed",
        }
    }
}

/// `rpc` cut to a bounded length, for audit details.
#[must_use]
pub fn bounded_rpc(rpc: &str) -> String {
    rpc.chars().take(MAX_RPC_PATH_CHARS).collect()
}

impl AuditEvent {
    /// A refused call; `rpc` is cut to a bounded length.
    #[must_use]
    pub fn call_refused(rpc: &str, reason: &str) -> Self {
        Self::CallRefused {
            rpc: bounded_rpc(rpc),
            reason: reason.to_owned(),
        }
    }

    /// The entry of `finding` (its summary cut to a bounded length).
    #[must_use]
    pub fn finding_recorded(container: &str, check: &str, severity: &str, summary: &str) -> Self {
        Self::FindingRecorded {
            container: container.to_owned(),
            check: check.to_owned(),
            severity: severity.to_owned(),
            summary: summary.chars().take(MAX_SUMMARY_CHARS).collect(),
        }
    }

    /// The `kind` column.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DaemonStarted { .. } => "daemon_started",
            Self::DaemonStopped { .. } => "daemon_stopped",
            Self::ConfigReloaded { .. } => "config_reloaded",
            Self::AuditGap { .. } => "audit_gap",
            Self::CallRefused { .. } => "call_refused",
            Self::FindingRecorded { .. } => "finding_recorded",
            Self::ContainerHealthChanged { .. } => "container_health_changed",
            Self::EventsSkipped { .. } => "events_skipped",
            Self::StoreRestored { .. } => "store_restored",
            Self::MasterKeyRotated { .. } => "master_key_rotated",
            Self::StoreBackedUp { .. } => "store_backed_up",
            Self::StoreWritesRefused { .. } => "store_writes_refused",
            Self::StoreWritesResumed { .. } => "store_writes_resumed",
            Self::Account { action, .. } => action.kind(),
            Self::Integrity { action, .. } => action.kind(),
            Self::Skill { action, .. } => action.kind(),
            Self::Config { action, .. } => action.kind(),
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
