//! Roles and what each may do.
//!
//! Invariant: roles are strictly ordered and each role holds every
//! permission of the roles below it; this table is the only place that says
//! which role grants which permission.

use std::{fmt, str::FromStr};

/// A person's role, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only dashboard, sees who is logged in.
    Viewer,
    /// Runs the environment, reads logs.
    Operator,
    /// Edits config, approves medium-risk skills, sees all sessions and
    /// forensic snapshots.
    Admin,
    /// Everything, including users, all skills, backup restore and
    /// quarantine release.
    SuperAdmin,
}

/// One thing a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the dashboard.
    ViewDashboard,
    /// See who is logged in (user, role, since).
    ViewActiveSessions,
    /// Start, stop and restart the OpenClaw environment.
    ControlEnvironment,
    /// Read the environment's logs.
    ViewLogs,
    /// Edit occcd and OpenClaw configuration.
    EditConfig,
    /// Approve skills rated medium risk.
    ApproveMediumRiskSkills,
    /// Submit, reject and revoke skills.
    ManageSkills,
    /// See every session in detail, and account locks.
    ViewAllSessions,
    /// Create, change, disable, delete and unlock users; revoke sessions.
    ManageUsers,
    /// Approve skills of any risk.
    ApproveSkills,
    /// Make backups of occcd's store and restore older config versions.
    RestoreBackups,
    /// List, export and verify forensic snapshots.
    ViewForensics,
    /// Read the audit log's entries.
    ViewAudit,
    /// Close open event findings (with a note).
    AcknowledgeFindings,
    /// Release a quarantined container.
    ReleaseQuarantine,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 15] = [
        Self::ViewDashboard,
        Self::ViewActiveSessions,
        Self::ControlEnvironment,
        Self::ViewLogs,
        Self::EditConfig,
        Self::ApproveMediumRiskSkills,
        Self::ManageSkills,
        Self::ViewAllSessions,
        Self::ManageUsers,
        Self::ApproveSkills,
        Self::RestoreBackups,
        Self::ViewForensics,
        Self::ViewAudit,
        Self::AcknowledgeFindings,
        Self::ReleaseQuarantine,
    ];

    /// The lowest role that holds this permission.
    #[must_use]
    pub fn minimum_role(self) -> Role {
        match self {
            Self::ViewDashboard | Self::ViewActiveSessions => Role::Viewer,
            Self::ControlEnvironment | Self::ViewLogs => Role::Operator,
            Self::EditConfig
            | Self::ApproveMediumRiskSkills
            | Self::ManageSkills
            | Self::ViewAllSessions
            | Self::ViewForensics
            | Self::ViewAudit
            | Self::AcknowledgeFindings => Role::Admin,
            Self::ManageUsers
            | Self::ApproveSkills
            | Self::RestoreBackups
            | Self::ReleaseQuarantine => Role::SuperAdmin,
        }
    }

    /// The name frontends see, e.g. `edit_config`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ViewDashboard => "view_dashboard",
            Self::ViewActiveSessions => "view_active_sessions",
            Self::ControlEnvironment => "control_environment",
            Self::ViewLogs => "view_logs",
            Self::EditConfig => "edit_config",
            Self::ApproveMediumRiskSkills => "approve_medium_risk_skills",
            Self::ManageSkills => "manage_skills",
            Self::ViewAllSessions => "view_all_sessions",
            Self::ManageUsers => "manage_users",
            Self::ApproveSkills => "approve_skills",
            Self::RestoreBackups => "restore_backups",
            Self::ViewForensics => "view_forensics",
            Self::ViewAudit => "view_audit",
            Self::AcknowledgeFindings => "acknowledge_findings",
            Self::ReleaseQuarantine => "release_quarantine",
        }
    }
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Self::Viewer, Self::Operator, Self::Admin, Self::SuperAdmin];

    /// Whether this role holds `permission`.
    #[must_use]
    pub fn allows(self, permission: Permission) -> bool {
        self >= permission.minimum_role()
    }

    /// All permissions this role holds.
    #[must_use]
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.allows(*p))
            .collect()
    }

    /// Stable name used in the database and in logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::SuperAdmin => "super-admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected viewer, operator, admin or super-admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| UnknownRole(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_includes_the_ones_below() {
        for pair in Role::ALL.windows(2) {
            let (lower, higher) = (pair[0], pair[1]);
            for permission in lower.permissions() {
                assert!(
                    higher.allows(permission),
                    "{higher} lacks {permission:?} of {lower}"
                );
            }
            assert!(higher.permissions().len() > lower.permissions().len());
        }
    }

    #[test]
    fn the_seed_table_holds() {
        use Permission::*;
        assert_eq!(
            Role::Viewer.permissions(),
            [ViewDashboard, ViewActiveSessions]
        );
        assert!(Role::Operator.allows(ControlEnvironment) && Role::Operator.allows(ViewLogs));
        assert!(!Role::Operator.allows(EditConfig));
        assert!(Role::Admin.allows(EditConfig) && Role::Admin.allows(ApproveMediumRiskSkills));
        assert!(Role::Admin.allows(ViewAllSessions) && !Role::Admin.allows(ManageUsers));
        assert!(!Role::Admin.allows(ApproveSkills) && !Role::Admin.allows(RestoreBackups));
        assert_eq!(Role::SuperAdmin.permissions().len(), Permission::ALL.len());
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
