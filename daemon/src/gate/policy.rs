//! The policy table: every RPC the daemon serves, what a caller needs to
//! reach it, and whether it needs an elevated (re-authenticated) session.
//!
//! Invariant: this table is the only list of reachable RPCs. A path missing
//! from it is refused; only [`Access::Anonymous`] rows are reachable without
//! a session; a row with `elevation` is reachable only inside the caller's
//! elevation window.

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

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcPolicy {
    /// Full gRPC path, `/package.Service/Method`.
    pub path: &'static str,
    /// What a caller needs.
    pub access: Access,
    /// Whether the session must be elevated.
    pub elevation: bool,
    /// Whether a quarantine locks it (config edits, environment start).
    pub locked_in_quarantine: bool,
}

const fn open(path: &'static str) -> RpcPolicy {
    RpcPolicy {
        path,
        access: Access::Anonymous,
        elevation: false,
        locked_in_quarantine: false,
    }
}

const fn session(path: &'static str) -> RpcPolicy {
    RpcPolicy {
        path,
        access: Access::Session,
        elevation: false,
        locked_in_quarantine: false,
    }
}

const fn own_sensitive(path: &'static str) -> RpcPolicy {
    RpcPolicy {
        path,
        access: Access::Session,
        elevation: true,
        locked_in_quarantine: false,
    }
}

const fn needs(path: &'static str, permission: Permission) -> RpcPolicy {
    RpcPolicy {
        path,
        access: Access::Permission(permission),
        elevation: false,
        locked_in_quarantine: false,
    }
}

const fn sensitive(path: &'static str, permission: Permission) -> RpcPolicy {
    RpcPolicy {
        path,
        access: Access::Permission(permission),
        elevation: true,
        locked_in_quarantine: false,
    }
}

/// `policy`, locked while any container is quarantined.
const fn locked(policy: RpcPolicy) -> RpcPolicy {
    RpcPolicy {
        locked_in_quarantine: true,
        ..policy
    }
}

/// Every RPC occcd serves.
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
    session("/occc.v1.DeviceKeys/RevokeDeviceKey"),
    own_sensitive("/occc.v1.Auth/ChangePassword"),
    own_sensitive("/occc.v1.Auth/StartTotpReenrollment"),
    own_sensitive("/occc.v1.Auth/RegenerateRecoveryCodes"),
    own_sensitive("/occc.v1.DeviceKeys/RegisterDeviceKey"),
    // Reading.
    needs("/occc.v1.Audit/VerifyChain", Permission::ViewLogs),
    needs(
        "/occc.v1.Users/ListActiveSessions",
        Permission::ViewActiveSessions,
    ),
    needs(
        "/occc.v1.Users/ListAllSessions",
        Permission::ViewAllSessions,
    ),
    needs("/occc.v1.Users/ListUsers", Permission::ManageUsers),
    // User management.
    sensitive("/occc.v1.Users/CreateUser", Permission::ManageUsers),
    sensitive("/occc.v1.Users/SetUserRole", Permission::ManageUsers),
    sensitive("/occc.v1.Users/DisableUser", Permission::ManageUsers),
    sensitive("/occc.v1.Users/EnableUser", Permission::ManageUsers),
    sensitive("/occc.v1.Users/DeleteUser", Permission::ManageUsers),
    sensitive("/occc.v1.Users/ResetTotp", Permission::ManageUsers),
    sensitive("/occc.v1.Users/UnlockUser", Permission::ManageUsers),
    sensitive("/occc.v1.Users/RevokeSession", Permission::ManageUsers),
    sensitive("/occc.v1.Users/RevokeUserSessions", Permission::ManageUsers),
    sensitive("/occc.v1.Users/LinkOsAccount", Permission::ManageUsers),
    // Container integrity: everyone sees it; operators run checks.
    needs(
        "/occc.v1.Integrity/GetIntegrityStatus",
        Permission::ViewDashboard,
    ),
    needs(
        "/occc.v1.Integrity/WatchIntegrity",
        Permission::ViewDashboard,
    ),
    needs("/occc.v1.Integrity/ListFindings", Permission::ViewDashboard),
    needs(
        "/occc.v1.Integrity/RunChecks",
        Permission::ControlEnvironment,
    ),
    // Trust decisions: pinning is a config edit; release ends a quarantine.
    locked(sensitive(
        "/occc.v1.Integrity/PinBaseline",
        Permission::EditConfig,
    )),
    sensitive(
        "/occc.v1.Integrity/ReleaseQuarantine",
        Permission::ReleaseQuarantine,
    ),
    // Evidence.
    needs(
        "/occc.v1.Integrity/ListSnapshots",
        Permission::ViewForensics,
    ),
    needs(
        "/occc.v1.Integrity/ExportSnapshot",
        Permission::ViewForensics,
    ),
    needs(
        "/occc.v1.Integrity/VerifySnapshot",
        Permission::ViewForensics,
    ),
    // The OpenClaw environment.
    locked(needs(
        "/occc.v1.Environment/StartEnvironment",
        Permission::ControlEnvironment,
    )),
    needs(
        "/occc.v1.Environment/StopEnvironment",
        Permission::ControlEnvironment,
    ),
    locked(needs(
        "/occc.v1.Environment/RestartEnvironment",
        Permission::ControlEnvironment,
    )),
    needs(
        "/occc.v1.Environment/GetEnvironmentStatus",
        Permission::ControlEnvironment,
    ),
    needs(
        "/occc.v1.Environment/StreamEnvironmentLogs",
        Permission::ViewLogs,
    ),
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
                !(entry.access == Access::Anonymous && entry.elevation),
                "{}",
                entry.path
            );
        }
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
