//! Skill domain values as `occc.v1` messages.
//!
//! Invariant: every enum maps both ways without a catch-all; unknown
//! values from a client are refused, never guessed.

use occc_proto::v1 as pb;

use crate::skills::{
    approval::SkillState,
    assess::Signal,
    rules::Level,
    view::{SkillDetail, SkillDiff, SkillSummary},
};

pub fn level_to_proto(level: Level) -> i32 {
    let level = match level {
        Level::Low => pb::RiskLevel::Low,
        Level::Medium => pb::RiskLevel::Medium,
        Level::High => pb::RiskLevel::High,
        Level::Critical => pb::RiskLevel::Critical,
    };
    level as i32
}

pub fn state_to_proto(state: SkillState) -> i32 {
    let state = match state {
        SkillState::Pending => pb::SkillState::Pending,
        SkillState::Approved => pb::SkillState::Approved,
        SkillState::Rejected => pb::SkillState::Rejected,
        SkillState::Revoked => pb::SkillState::Revoked,
    };
    state as i32
}

/// `None` for unspecified (no filter); an error for unknown values.
pub fn state_from_proto(value: i32) -> Result<Option<SkillState>, tonic::Status> {
    match pb::SkillState::try_from(value) {
        Ok(pb::SkillState::Unspecified) => Ok(None),
        Ok(pb::SkillState::Pending) => Ok(Some(SkillState::Pending)),
        Ok(pb::SkillState::Approved) => Ok(Some(SkillState::Approved)),
        Ok(pb::SkillState::Rejected) => Ok(Some(SkillState::Rejected)),
        Ok(pb::SkillState::Revoked) => Ok(Some(SkillState::Revoked)),
        Err(_) => Err(tonic::Status::invalid_argument(format!(
            "state: unknown skill state {value}"
        ))),
    }
}

pub fn version_to_proto(summary: &SkillSummary) -> pb::SkillVersion {
    let row = &summary.row;
    pb::SkillVersion {
        tree_hash: row.tree_hash.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        level: level_to_proto(summary.level),
        state: state_to_proto(summary.state),
        submitted_by: row.submitted_by.clone(),
        submitted_at_ms: row.submitted_at,
        decided_by: row.decided_by.clone().unwrap_or_default(),
        decided_at_ms: row.decided_at.unwrap_or_default(),
        note: row.note.clone().unwrap_or_default(),
        approvals: summary
            .approvals
            .iter()
            .map(|a| pb::SkillApproval {
                approver: a.approver.clone(),
                approved_at_ms: a.approved_at,
                note: a.note.clone(),
            })
            .collect(),
        clawhub_fingerprint: row.clawhub_fingerprint.clone(),
        file_count: summary.file_count,
        total_bytes: summary.total_bytes,
        installed_at_ms: row.installed_at.unwrap_or_default(),
    }
}

pub fn signal_to_proto(signal: &Signal) -> pb::RiskSignal {
    pb::RiskSignal {
        rule: signal.rule.clone(),
        level: level_to_proto(signal.level),
        file: signal.file.clone(),
        line: signal.line,
        excerpt: signal.excerpt.clone(),
        reason: signal.reason.clone(),
    }
}

pub fn detail_to_proto(detail: &SkillDetail) -> pb::SkillDetail {
    pb::SkillDetail {
        skill: Some(version_to_proto(&detail.summary)),
        files: detail
            .manifest
            .iter()
            .map(|e| pb::SkillFile {
                path: e.path.clone(),
                mode: e.mode,
                size: e.size,
                sha256: e.sha256.clone(),
            })
            .collect(),
        frontmatter_json: detail.summary.row.frontmatter.clone(),
        signals: detail.signals.iter().map(signal_to_proto).collect(),
    }
}

pub fn diff_to_proto(diff: &SkillDiff) -> pb::SkillDiff {
    pb::SkillDiff {
        added: diff.added.clone(),
        removed: diff.removed.clone(),
        changed: diff.changed.clone(),
        from_level: diff.from_level.map_or(0, level_to_proto),
        to_level: diff.to_level.map_or(0, level_to_proto),
        new_signals: diff.new_signals.iter().map(signal_to_proto).collect(),
        gone_signals: diff.gone_signals.iter().map(signal_to_proto).collect(),
    }
}
