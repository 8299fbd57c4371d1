//! What callers see of a skill version: its summary, its detail, and the
//! difference between two versions.
//!
//! Invariant: built only from stored rows (never from the files on disk),
//! so listing and showing cost no file reads; a row the store cannot
//! decode is an error, not a silently empty view.

use super::{
    approval::SkillState, assess::Signal, error::SkillError, rules::Level, tree::ManifestEntry,
};
use crate::store::{SkillApprovalRow, SkillRow};

/// One skill version, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillSummary {
    /// The stored row.
    pub row: SkillRow,
    /// Its level.
    pub level: Level,
    /// Its state.
    pub state: SkillState,
    /// Approvals so far.
    pub approvals: Vec<SkillApprovalRow>,
    /// Number of files.
    pub file_count: u32,
    /// Bytes of all files.
    pub total_bytes: u64,
}

/// One skill version in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillDetail {
    /// The summary.
    pub summary: SkillSummary,
    /// Every file.
    pub manifest: Vec<ManifestEntry>,
    /// Every signal.
    pub signals: Vec<Signal>,
}

/// What changed from one version to another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkillDiff {
    /// Paths only in the newer version.
    pub added: Vec<String>,
    /// Paths only in the older version.
    pub removed: Vec<String>,
    /// Paths in both whose contents or mode differ.
    pub changed: Vec<String>,
    /// Level of the older version.
    pub from_level: Option<Level>,
    /// Level of the newer version.
    pub to_level: Option<Level>,
    /// Signals (rule, file) the newer version has and the older had not.
    pub new_signals: Vec<Signal>,
    /// Signals the older version had and the newer has not.
    pub gone_signals: Vec<Signal>,
}

fn corrupt(what: &str, tree_hash: &str) -> SkillError {
    SkillError::Disk(format!("stored {what} of {tree_hash} cannot be read"))
}

/// The manifest stored in `row`.
pub fn manifest_of(row: &SkillRow) -> Result<Vec<ManifestEntry>, SkillError> {
    serde_json::from_str(&row.manifest).map_err(|_| corrupt("manifest", &row.tree_hash))
}

/// The signals stored in `row`.
pub fn signals_of(row: &SkillRow) -> Result<Vec<Signal>, SkillError> {
    serde_json::from_str(&row.signals).map_err(|_| corrupt("signals", &row.tree_hash))
}

/// The summary of `row` with its `approvals`.
pub fn summary(
    row: SkillRow,
    approvals: Vec<SkillApprovalRow>,
) -> Result<SkillSummary, SkillError> {
    let level = Level::parse(&row.level).ok_or_else(|| corrupt("level", &row.tree_hash))?;
    let state = SkillState::parse(&row.state).ok_or_else(|| corrupt("state", &row.tree_hash))?;
    Ok(SkillSummary {
        level,
        state,
        approvals,
        file_count: u32::try_from(row.file_count).unwrap_or(u32::MAX),
        total_bytes: u64::try_from(row.total_bytes).unwrap_or(0),
        row,
    })
}

/// The difference from `older` to `newer`.
pub fn diff(older: &SkillRow, newer: &SkillRow) -> Result<SkillDiff, SkillError> {
    let (old_files, new_files) = (manifest_of(older)?, manifest_of(newer)?);
    let find = |files: &[ManifestEntry], path: &str| files.iter().find(|e| e.path == path).cloned();
    let mut out = SkillDiff {
        from_level: Level::parse(&older.level),
        to_level: Level::parse(&newer.level),
        ..SkillDiff::default()
    };
    for entry in &new_files {
        match find(&old_files, &entry.path) {
            None => out.added.push(entry.path.clone()),
            Some(old) if old != *entry => out.changed.push(entry.path.clone()),
            Some(_) => {}
        }
    }
    for entry in &old_files {
        if find(&new_files, &entry.path).is_none() {
            out.removed.push(entry.path.clone());
        }
    }
    let (old_signals, new_signals) = (signals_of(older)?, signals_of(newer)?);
    let key = |s: &Signal| (s.rule.clone(), s.file.clone());
    let old_keys: Vec<_> = old_signals.iter().map(key).collect();
    let new_keys: Vec<_> = new_signals.iter().map(key).collect();
    out.new_signals = new_signals
        .iter()
        .filter(|s| !old_keys.contains(&key(s)))
        .cloned()
        .collect();
    out.gone_signals = old_signals
        .iter()
        .filter(|s| !new_keys.contains(&key(s)))
        .cloned()
        .collect();
    Ok(out)
}
