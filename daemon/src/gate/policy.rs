//! The policy table: every RPC the daemon serves, what a caller needs to
//! reach it, and whether it needs an elevated (re-authenticated) session.
//!
//! Invariant: this table is the only list of reachable RPCs. A path missing
//! from it is refused; only [`Access::Anonymous`] rows are reachable without
//! a session; a row with an [`Elevation`] is reachable only inside the
//! caller's elevation window, and a [`Elevation::WithPassword`] row — every
//! change of credentials and every grant of access — only if that elevation
//! re-proved the password.

use crate::auth::role::Permission;

/// What a caller needs to reach an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any peer that can open the socket.
    Anonymous,
    /// Any logged-in user (their own account and sessions).
    Session,
    /// A logged-in user whose role holds the permission.
    Permission(Permission),
}

/// Whether a caller must have re-authenticated, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elevation {
    /// No re-authentication needed.
    None,
    /// Inside an elevation window, by any method.
    Any,
    /// Inside an elevation window obtained with the password and a second
    /// factor: credential changes, which a device key or PAM alone must not
    /// be able to make.
    WithPassword,
}

/// Whether a quarantine of any container holds an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InQuarantine {
    /// Reachable while a container is quarantined.
    Allowed,
    /// Refused until the quarantine is released: what changes trust or
    /// starts the environment.
    Locked,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcPolicy {
    /// Full gRPC path, `/package.Service/Method`.
    pub path: &'static str,
    /// What a caller needs.
    pub access: Access,
    /// Whether, and how, the session must be elevated.
    pub elevation: Elevation,
    /// Whether a quarantine locks it (config edits, environment start).
    pub in_quarantine: InQuarantine,
}

const fn row(path: &'static str, access: Access, elevation: Elevation) -> RpcPolicy {
    RpcPolicy {
        path,
        access,
        elevation,
        in_quarantine: InQuarantine::Allowed,
    }
}

/// Anyone who can open the socket.
const fn open(path: &'static str) -> RpcPolicy {
    row(path, Access::Anonymous, Elevation::None)
}

/// Any logged-in user, about their own session or account.
const fn session(path: &'static str) -> RpcPolicy {
    row(path, Access::Session, Elevation::None)
}

/// Any logged-in user, elevated with the password: their own credentials.
const fn own_credential(path: &'static str) -> RpcPolicy {
    row(path, Access::Session, Elevation::WithPassword)
}

/// A user whose role holds `permission`.
const fn needs(path: &'static str, permission: Permission) -> RpcPolicy {
    row(path, Access::Permission(permission), Elevation::None)
}

/// A user whose role holds `permission`, elevated.
const fn sensitive(path: &'static str, permission: Permission) -> RpcPolicy {
    row(path, Access::Permission(permission), Elevation::Any)
}

/// A user whose role holds `permission`, elevated with the password: what
/// grants access or credentials, which a device key or PAM alone must not.
const fn granting(path: &'static str, permission: Permission) -> RpcPolicy {
    row(
        path,
        Access::Permission(permission),
        Elevation::WithPassword,
    )
}

/// `policy`, locked while any container is quarantined.
const fn locked(policy: RpcPolicy) -> RpcPolicy {
    RpcPolicy {
        in_quarantine: InQuarantine::Locked,
        ..policy
    }
}

use Permission::{
    AcknowledgeFindings, ApproveMediumRiskSkills, ControlEnvironment, EditConfig, ManageSkills,
    ManageUsers, ReleaseQuarantine, RestoreBackups, ViewActiveSessions, ViewAllSessions, ViewAudit,
    ViewDashboard, ViewForensics, ViewLogs,
};

/// Every RPC occcd serves, one per line.
#[rustfmt::skip]
pub const POLICY_TABLE: &[RpcPolicy] = &[
    // Standard services, so grpcurl, grpc_health_probe and friends work.
    open("/grpc.health.v1.Health/Check"),
    open("/grpc.health.v1.Health/Watch"),
    open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
    // What a login screen needs before anyone has logged in.
    open("/occc.v1.System/GetInfo"),
    open("/occc.v1.Auth/Bootstrap"),
    open("/occc.v1.Auth/StartEnrollment"),
    open("/occc.v1.Auth/ConfirmEnrollment"),
    open("/occc.v1.Auth/Login"),
    open("/occc.v1.DeviceKeys/GetLoginMethods"),
    open("/occc.v1.DeviceKeys/CreateLoginChallenge"),
    open("/occc.v1.DeviceKeys/LoginWithDeviceKey"),
    open("/occc.v1.Biometric/PamLogin"),
    // One's own session and account.
    session("/occc.v1.Auth/Logout"),
    session("/occc.v1.Auth/Elevate"),
    session("/occc.v1.Auth/WhoAmI"),
    session("/occc.v1.Auth/ListMySessions"),
    session("/occc.v1.Auth/ConfirmTotpReenrollment"),
    session("/occc.v1.DeviceKeys/CreateSessionChallenge"),
    session("/occc.v1.DeviceKeys/ElevateWithDeviceKey"),
    session("/occc.v1.Biometric/PamElevate"),
    // Own keys; another user's need a super-admin (checked in the domain).
    session("/occc.v1.DeviceKeys/ListDeviceKeys"),
    // Revoking ends the owner's other sessions: not for a stolen key to do.
    own_credential("/occc.v1.DeviceKeys/RevokeDeviceKey"),
    // Own credentials: only after re-proving the password and a second factor.
    own_credential("/occc.v1.Auth/ChangePassword"),
    own_credential("/occc.v1.Auth/StartTotpReenrollment"),
    own_credential("/occc.v1.Auth/RegenerateRecoveryCodes"),
    own_credential("/occc.v1.DeviceKeys/RegisterDeviceKey"),
    // Reading.
    needs("/occc.v1.Audit/VerifyChain",                 ViewLogs),
    needs("/occc.v1.Audit/ListAuditEntries",            ViewAudit),
    needs("/occc.v1.Audit/WatchAudit",                  ViewAudit),
    needs("/occc.v1.Audit/ExportAudit",                 ViewAudit),
    needs("/occc.v1.Audit/GetAuditPublicKey",           ViewDashboard),
    needs("/occc.v1.Users/ListActiveSessions",          ViewActiveSessions),
    needs("/occc.v1.Users/ListAllSessions",             ViewAllSessions),
    needs("/occc.v1.Users/ListUsers",                   ManageUsers),
    // User management; granting access needs the password re-proved.
    granting("/occc.v1.Users/CreateUser",               ManageUsers),
    granting("/occc.v1.Users/SetUserRole",              ManageUsers),
    sensitive("/occc.v1.Users/DisableUser",             ManageUsers),
    granting("/occc.v1.Users/EnableUser",               ManageUsers),
    sensitive("/occc.v1.Users/DeleteUser",              ManageUsers),
    granting("/occc.v1.Users/ResetTotp",                ManageUsers),
    sensitive("/occc.v1.Users/UnlockUser",              ManageUsers),
    sensitive("/occc.v1.Users/RevokeSession",           ManageUsers),
    sensitive("/occc.v1.Users/RevokeUserSessions",      ManageUsers),
    granting("/occc.v1.Users/LinkOsAccount",            ManageUsers),
    // Container integrity: everyone sees it; operators run checks.
    needs("/occc.v1.Integrity/GetIntegrityStatus",      ViewDashboard),
    needs("/occc.v1.Integrity/WatchIntegrity",          ViewDashboard),
    needs("/occc.v1.Integrity/ListFindings",            ViewDashboard),
    needs("/occc.v1.Integrity/RunChecks",               ControlEnvironment),
    // Closing an alert is a decision: admins, re-authenticated, with a note.
    sensitive("/occc.v1.Integrity/AcknowledgeFindings", AcknowledgeFindings),
    // Trust decisions: pinning is a config edit; release ends a quarantine.
    locked(sensitive("/occc.v1.Integrity/PinBaseline",  EditConfig)),
    sensitive("/occc.v1.Integrity/ReleaseQuarantine",   ReleaseQuarantine),
    // Evidence.
    needs("/occc.v1.Integrity/ListSnapshots",           ViewForensics),
    needs("/occc.v1.Integrity/ExportSnapshot",          ViewForensics),
    needs("/occc.v1.Integrity/VerifySnapshot",          ViewForensics),
    // The OpenClaw environment.
    locked(needs("/occc.v1.Environment/StartEnvironment",   ControlEnvironment)),
    needs("/occc.v1.Environment/StopEnvironment",           ControlEnvironment),
    locked(needs("/occc.v1.Environment/RestartEnvironment", ControlEnvironment)),
    needs("/occc.v1.Environment/GetEnvironmentStatus",      ControlEnvironment),
    needs("/occc.v1.Environment/StreamEnvironmentLogs",     ViewLogs),
    // Skills: admins submit; anyone signed in reads; approval is elevated
    // (the level decides between admin and super-admin, in the domain).
    needs("/occc.v1.Skills/SubmitSkill",                    ManageSkills),
    needs("/occc.v1.Skills/SubmitSkillFolder",              ManageSkills),
    needs("/occc.v1.Skills/ListSkills",                     ViewDashboard),
    needs("/occc.v1.Skills/GetSkill",                       ViewDashboard),
    needs("/occc.v1.Skills/DiffSkill",                      ViewDashboard),
    locked(sensitive("/occc.v1.Skills/ApproveSkill",        ApproveMediumRiskSkills)),
    sensitive("/occc.v1.Skills/RejectSkill",                ManageSkills),
    sensitive("/occc.v1.Skills/RevokeSkill",                ManageSkills),
    // OpenClaw's config: everyone reads it redacted (secrets shown to
    // elevated admins, in the domain); edits are elevated and held by a
    // quarantine; weakening a security setting needs a super-admin (in the
    // domain); only a super-admin restores an older version.
    needs("/occc.v1.Config/GetConfig",                      ViewDashboard),
    needs("/occc.v1.Config/CheckConfig",                    EditConfig),
    locked(sensitive("/occc.v1.Config/UpdateConfig",        EditConfig)),
    needs("/occc.v1.Config/ListConfigVersions",             EditConfig),
    needs("/occc.v1.Config/GetConfigVersion",               EditConfig),
    needs("/occc.v1.Config/DiffConfigVersions",             EditConfig),
    locked(sensitive("/occc.v1.Config/RestoreConfigVersion", RestoreBackups)),
    // A backup holds everything (encrypted): super-admins, re-authenticated.
    sensitive("/occc.v1.Backups/CreateBackup",              RestoreBackups),
];

/// The table row for `path`, if the daemon serves it.
#[must_use]
pub fn policy_for(path: &str) -> Option<&'static RpcPolicy> {
    POLICY_TABLE.iter().find(|entry| entry.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_allowlist_is_health_reflection_info_and_login_flows() {
        let anonymous: Vec<_> = POLICY_TABLE
            .iter()
            .filter(|entry| entry.access == Access::Anonymous)
            .map(|entry| entry.path)
            .collect();
        assert_eq!(
            anonymous,
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/occc.v1.System/GetInfo",
                "/occc.v1.Auth/Bootstrap",
                "/occc.v1.Auth/StartEnrollment",
                "/occc.v1.Auth/ConfirmEnrollment",
                "/occc.v1.Auth/Login",
                "/occc.v1.DeviceKeys/GetLoginMethods",
                "/occc.v1.DeviceKeys/CreateLoginChallenge",
                "/occc.v1.DeviceKeys/LoginWithDeviceKey",
                "/occc.v1.Biometric/PamLogin",
            ]
        );
    }

    #[test]
    fn the_anonymous_allowlist_in_the_architecture_doc_is_the_tables() {
        let doc = include_str!("../../../docs/architecture.md");
        let section = doc
            .split("## Anonymous allowlist")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        // Every `/…` path quoted anywhere in the section, in order.
        let listed: Vec<&str> = section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|quoted| quoted.starts_with('/'))
            .collect();
        let anonymous: Vec<&str> = POLICY_TABLE
            .iter()
            .filter(|entry| entry.access == Access::Anonymous)
            .map(|entry| entry.path)
            .collect();
        assert_eq!(listed, anonymous);
        assert!(section.contains(&format!("Exactly these {} calls", listed.len())));
    }

    #[test]
    fn no_path_appears_twice_and_anonymous_rows_never_need_elevation() {
        for (index, entry) in POLICY_TABLE.iter().enumerate() {
            assert!(
                POLICY_TABLE[index + 1..]
                    .iter()
                    .all(|other| other.path != entry.path),
                "{}",
                entry.path
            );
            assert!(
                !(entry.access == Access::Anonymous && entry.elevation != Elevation::None),
                "{}",
                entry.path
            );
        }
    }

    #[test]
    fn exactly_what_grants_access_or_credentials_needs_the_password_elevation() {
        let with_password: Vec<_> = POLICY_TABLE
            .iter()
            .filter(|entry| entry.elevation == Elevation::WithPassword)
            .map(|entry| entry.path)
            .collect();
        assert_eq!(
            with_password,
            [
                "/occc.v1.DeviceKeys/RevokeDeviceKey",
                "/occc.v1.Auth/ChangePassword",
                "/occc.v1.Auth/StartTotpReenrollment",
                "/occc.v1.Auth/RegenerateRecoveryCodes",
                "/occc.v1.DeviceKeys/RegisterDeviceKey",
                "/occc.v1.Users/CreateUser",
                "/occc.v1.Users/SetUserRole",
                "/occc.v1.Users/EnableUser",
                "/occc.v1.Users/ResetTotp",
                "/occc.v1.Users/LinkOsAccount",
            ]
        );
    }

    #[test]
    fn unknown_and_near_miss_paths_have_no_policy() {
        assert!(policy_for("/occc.v1.Audit/VerifyChain").is_some());
        assert!(policy_for("/occc.v1.Audit/VerifyChain/").is_none());
        assert!(
            policy_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_none()
        );
        assert!(policy_for("").is_none());
    }
}
