//! Holding OpenClaw's skills folders to the approved set: every skill
//! folder there is either what occcd installed under that name, or a
//! version that was approved; anything else is a finding.
//!
//! Invariant: a folder holding a SKILL.md whose tree hash is not approved
//! is `skills.unapproved` (high); a folder occcd installed whose tree hash
//! changed is `skills.tampered` (critical); a link where a skill could be
//! is `skills.unapproved` too; a skills folder that cannot be read is
//! `check.failed` — never a silent pass. The check holds the skills
//! install lock, so occcd's own installs are never seen half-done.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use serde_json::json;
use tokio::sync::Mutex as AsyncMutex;

use super::finding::{Finding, Severity};
use crate::{
    clock::UnixMillis,
    skills::{SkillError, host_folder, intake::IntakeLimits},
    store::Store,
};

/// What the skills check needs.
#[derive(Debug, Clone)]
pub struct SkillsWatch {
    /// The folders held to the approved set.
    pub dirs: Vec<PathBuf>,
    /// The container whose health the findings count against.
    pub container: String,
    /// Held by installs; taken while checking.
    pub install_lock: Arc<AsyncMutex<()>>,
    /// Bounds on what one skill folder may hold.
    pub limits: IntakeLimits,
}

/// One top-level entry of a skills folder, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// What occcd installed, or an approved version.
    Approved,
    /// Not a skill (no SKILL.md, a plain file).
    NotASkill,
    /// A skill nobody approved (tree hash, or why it could not be read).
    Unapproved(String),
    /// occcd installed another version under this name.
    Tampered { found: String, installed: String },
}

impl SkillsWatch {
    /// Checks every skills folder; returns the findings.
    pub async fn check(&self, store: &Store, now: UnixMillis) -> Vec<Finding> {
        let _no_install_running = self.install_lock.lock().await;
        let installed: HashMap<String, String> = match store.installed_skills().await {
            Ok(rows) => rows.into_iter().collect(),
            Err(err) => return vec![self.failed("skills state", &err.to_string(), now)],
        };
        let approved = match store.approved_skill_hashes().await {
            Ok(hashes) => hashes,
            Err(err) => return vec![self.failed("skills state", &err.to_string(), now)],
        };
        let (dirs, limits) = (self.dirs.clone(), self.limits);
        let judged = tokio::task::spawn_blocking(move || {
            dirs.iter()
                .map(|dir| {
                    (
                        dir.clone(),
                        judge_folder(dir, &installed, &approved, limits),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(judged) = judged else {
            return vec![self.failed("skills folders", "the check's task failed", now)];
        };
        let mut findings = Vec::new();
        for (dir, verdicts) in judged {
            match verdicts {
                Err(err) => findings.push(self.failed(&dir.display().to_string(), &err, now)),
                Ok(verdicts) => {
                    for (name, verdict) in verdicts {
                        if let Some(finding) = self.finding(&dir, &name, verdict, now) {
                            findings.push(finding);
                        }
                    }
                }
            }
        }
        findings
    }

    fn failed(&self, what: &str, why: &str, now: UnixMillis) -> Finding {
        Finding::new(
            &self.container,
            "check.failed",
            Severity::High,
            format!("skills check could not read {what}: {why}"),
            json!({ "check": "skills", "what": what, "error": why }),
            now,
        )
    }

    fn finding(
        &self,
        dir: &std::path::Path,
        name: &str,
        verdict: Verdict,
        now: UnixMillis,
    ) -> Option<Finding> {
        let path = dir.join(name).display().to_string();
        match verdict {
            Verdict::Approved | Verdict::NotASkill => None,
            Verdict::Unapproved(what) => Some(Finding::new(
                &self.container,
                "skills.unapproved",
                Severity::High,
                format!("skill folder {path} is not an approved skill ({what})"),
                json!({ "path": path, "found": what }),
                now,
            )),
            Verdict::Tampered { found, installed } => Some(Finding::new(
                &self.container,
                "skills.tampered",
                Severity::Critical,
                format!("skill {name} changed since occcd installed it ({path})"),
                json!({ "path": path, "tree_hash": found, "installed": installed }),
                now,
            )),
        }
    }
}

/// Judges every top-level entry of skills folder `dir`.
fn judge_folder(
    dir: &std::path::Path,
    installed: &HashMap<String, String>,
    approved: &std::collections::HashSet<String>,
    limits: IntakeLimits,
) -> Result<Vec<(String, Verdict)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|err| err.to_string())?;
    let mut verdicts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| err.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|err| err.to_string())?;
        let verdict = if kind.is_symlink() {
            Verdict::Unapproved("a symbolic link where a skill folder could be".to_owned())
        } else if !kind.is_dir() {
            Verdict::NotASkill
        } else {
            judge_skill(&entry.path(), &name, installed, approved, limits)
        };
        verdicts.push((name, verdict));
    }
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(verdicts)
}

fn judge_skill(
    path: &std::path::Path,
    name: &str,
    installed: &HashMap<String, String>,
    approved: &std::collections::HashSet<String>,
    limits: IntakeLimits,
) -> Verdict {
    let found = match host_folder::read_folder(path, 0, limits) {
        Ok(tree) => tree.tree_hash(),
        Err(err) => {
            let why = err.to_string();
            return match installed.get(name) {
                Some(ours) => Verdict::Tampered {
                    found: format!("unreadable as a skill: {why}"),
                    installed: ours.clone(),
                },
                None if matches!(err, SkillError::BadArchive(_)) && why.contains("no SKILL.md") => {
                    Verdict::NotASkill
                }
                None => Verdict::Unapproved(why),
            };
        }
    };
    match installed.get(name) {
        Some(ours) if *ours == found => Verdict::Approved,
        Some(ours) => Verdict::Tampered {
            found,
            installed: ours.clone(),
        },
        None if approved.contains(&found) => Verdict::Approved,
        None => Verdict::Unapproved(format!("tree hash {found}")),
    }
}
