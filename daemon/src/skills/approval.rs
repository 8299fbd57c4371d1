//! Who may approve, reject or revoke which skill: the approval rules as a
//! pure function of the skill's level and state, who submitted it, who
//! approved it already, and who asks.
//!
//! Invariant: an admin approves only low and medium skills, a super-admin
//! any; a critical skill needs two different super-admins; nobody approves
//! a skill they submitted; only a pending skill is approved or rejected and
//! only an approved one revoked. (The gate has already required an elevated
//! session of an admin or above.)

use super::{error::SkillError, rules::Level};
use crate::auth::role::Role;

/// Where a skill version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkillState {
    /// Submitted, waiting for a decision.
    Pending,
    /// Approved (and installed).
    Approved,
    /// Rejected.
    Rejected,
    /// Approved once, then revoked (un-installed).
    Revoked,
}

impl SkillState {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Revoked => "revoked",
        }
    }

    /// The state named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected, Self::Revoked]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// Who is deciding.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// Their username.
    pub username: &'a str,
    /// Their role.
    pub role: Role,
}

/// What an approval does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// The skill is approved (and gets installed).
    Approved,
    /// Recorded; a second, different super-admin must approve too.
    NeedsSecondApprover,
}

/// How many different approvers a `level` skill needs.
#[must_use]
pub fn approvals_needed(level: Level) -> i64 {
    if level == Level::Critical { 2 } else { 1 }
}

/// Whether `by` may approve a `level` skill in `state` that `submitters`
/// submitted (each time it was submitted) and `approved_by` approved so far.
pub fn approve(
    level: Level,
    state: SkillState,
    submitters: &[String],
    approved_by: &[String],
    by: Decider<'_>,
) -> Result<ApprovalOutcome, SkillError> {
    if state != SkillState::Pending {
        return Err(SkillError::Refused(format!(
            "this skill is {}; only a pending skill can be approved (submit it again to start over)",
            state.as_str()
        )));
    }
    if submitters.iter().any(|name| name == by.username) {
        return Err(SkillError::Refused(
            "nobody approves a skill they submitted; ask another admin".to_owned(),
        ));
    }
    let allowed = match by.role {
        Role::SuperAdmin => true,
        Role::Admin => level <= Level::Medium,
        Role::Operator | Role::Viewer => false,
    };
    if !allowed {
        return Err(SkillError::Refused(format!(
            "a {level}-risk skill needs a super-admin's approval (admins approve low and medium)"
        )));
    }
    if level < Level::Critical {
        return Ok(ApprovalOutcome::Approved);
    }
    if approved_by.iter().any(|name| name == by.username) {
        return Err(SkillError::Refused(
            "you approved this critical skill already; a second, different super-admin must approve it"
                .to_owned(),
        ));
    }
    Ok(if approved_by.is_empty() {
        ApprovalOutcome::NeedsSecondApprover
    } else {
        ApprovalOutcome::Approved
    })
}

/// Whether a skill in `state` may be rejected.
pub fn reject(state: SkillState) -> Result<(), SkillError> {
    if state == SkillState::Pending {
        return Ok(());
    }
    Err(SkillError::Refused(format!(
        "this skill is {}; only a pending skill can be rejected (revoke an approved one)",
        state.as_str()
    )))
}

/// Whether a skill in `state` may be revoked.
pub fn revoke(state: SkillState) -> Result<(), SkillError> {
    if state == SkillState::Approved {
        return Ok(());
    }
    Err(SkillError::Refused(format!(
        "this skill is {}; only an approved skill can be revoked",
        state.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Vec<String> {
        vec!["ann".to_owned()]
    }

    fn admin(name: &str) -> Decider<'_> {
        Decider {
            username: name,
            role: Role::Admin,
        }
    }

    fn root(name: &str) -> Decider<'_> {
        Decider {
            username: name,
            role: Role::SuperAdmin,
        }
    }

    #[test]
    fn admins_approve_low_and_medium_super_admins_any() {
        use ApprovalOutcome::Approved;
        let pending = SkillState::Pending;
        assert_eq!(
            approve(Level::Medium, pending, &ann(), &[], admin("bob")).unwrap(),
            Approved
        );
        let high = approve(Level::High, pending, &ann(), &[], admin("bob")).unwrap_err();
        assert!(high.to_string().contains("needs a super-admin"), "{high}");
        assert_eq!(
            approve(Level::High, pending, &ann(), &[], root("eve")).unwrap(),
            Approved
        );
        let operator = Decider {
            username: "op",
            role: Role::Operator,
        };
        assert!(approve(Level::Low, pending, &ann(), &[], operator).is_err());
    }

    #[test]
    fn critical_needs_two_different_super_admins_and_nobody_approves_their_own() {
        let pending = SkillState::Pending;
        let first = approve(Level::Critical, pending, &ann(), &[], root("eve")).unwrap();
        assert_eq!(first, ApprovalOutcome::NeedsSecondApprover);
        let again = approve(
            Level::Critical,
            pending,
            &ann(),
            &["eve".into()],
            root("eve"),
        )
        .unwrap_err();
        assert!(again.to_string().contains("second, different"), "{again}");
        let second = approve(
            Level::Critical,
            pending,
            &ann(),
            &["eve".into()],
            root("sam"),
        )
        .unwrap();
        assert_eq!(second, ApprovalOutcome::Approved);
        let own = approve(Level::Low, pending, &["eve".to_owned()], &[], root("eve")).unwrap_err();
        assert!(own.to_string().contains("they submitted"), "{own}");
        assert!(approve(Level::Critical, pending, &ann(), &[], admin("bob")).is_err());
    }

    #[test]
    fn only_pending_is_decided_and_only_approved_revoked() {
        let done = approve(Level::Low, SkillState::Approved, &ann(), &[], root("eve")).unwrap_err();
        assert!(done.to_string().contains("only a pending skill"));
        assert!(reject(SkillState::Pending).is_ok() && reject(SkillState::Approved).is_err());
        assert!(revoke(SkillState::Approved).is_ok() && revoke(SkillState::Pending).is_err());
        for state in [
            SkillState::Pending,
            SkillState::Approved,
            SkillState::Rejected,
            SkillState::Revoked,
        ] {
            assert_eq!(SkillState::parse(state.as_str()), Some(state));
        }
    }
}
