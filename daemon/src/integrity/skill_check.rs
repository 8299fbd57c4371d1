//! Holding OpenClaw's skills folders to the approved set: every skill
//! folder there is either what occcd installed under that name, or a
//! version that was approved; anything else is a finding.
//!
//! Invariant: a folder holding a SKILL.md whose tree hash is not approved
//! is `skills.unapproved` (high); a folder occcd installed whose tree hash
//! changed is `skills.tampered` (critical); a link where a skill could be
//! is `skills.unapproved` too; a skills folder that cannot be read is
//! `check.failed` — never a silent pass. The check holds the skills
//! install lock, so occcd's own installs are never seen half-done. Skills
//! folders that live only inside the container are read through the
//! engine at hash sweeps: a skill folder there whose tree hash (of its
//! regular files) is not approved is `skills.container_unapproved` (high),
//! kept between hash sweeps.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use serde_json::json;
use tokio::sync::Mutex as AsyncMutex;

use super::{
    archive::{self, HashedFile},
    engine::{Engine, EngineError},
    finding::{Finding, Severity},
};
use crate::{
    clock::UnixMillis,
    skills::{
        SkillError, host_folder,
        intake::IntakeLimits,
        tree::{ManifestEntry, tree_hash_of},
    },
    store::Store,
};

/// Most entries of one skills folder checked in one pass.
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
const MAX_FOLDERS_CHECKED: usize = 2_000;
/// Most bytes of skills read from one skills folder in one pass.
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
const MAX_BYTES_CHECKED: u64 = 512 * 1024 * 1024;

/// What the skills check needs.
#[derive(Debug, Clone)]
pub struct SkillsWatch {
    /// The folders held to the approved set.
    pub dirs: Vec<PathBuf>,
    /// Skills folders inside the container (read through the engine).
    pub container_dirs: Vec<String>,
    /// The container whose health the findings count against.
    pub container: String,
    /// Held by installs; taken while checking.
    pub install_lock: Arc<AsyncMutex<()>>,
    /// Bounds on what one skill folder may hold.
    pub limits: IntakeLimits,
}

/// One top-level entry of a skills folder, judged.
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
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

    /// Checks the skills folders inside the container through the engine's
    /// archive API (at hash sweeps): every skill folder there must be an
    /// approved version. Regular files make the tree hash; links and other
    /// entries are not part of it there (see docs/skills.md).
    pub async fn check_in_container(
        &self,
        engine: &Engine,
        store: &Store,
        max_bytes: u64,
        now: UnixMillis,
    ) -> Vec<Finding> {
        if self.container_dirs.is_empty() {
            return Vec::new();
        }
        let approved = match store.approved_skill_hashes().await {
            Ok(hashes) => hashes,
            Err(err) => return vec![self.failed("skills state", &err.to_string(), now)],
        };
        let mut findings = Vec::new();
        for dir in &self.container_dirs {
            let files =
                match archive::hash_path(engine.docker(), &self.container, dir, max_bytes).await {
                    Ok(files) => files,
                    Err(EngineError::NotFound(_)) => continue,
                    Err(err) => {
                        findings.push(self.failed(
                            &format!("{dir} in the container"),
                            &err.to_string(),
                            now,
                        ));
                        continue;
                    }
                };
            // Every folder with files is judged, SKILL.md or not: its
            // SKILL.md may be a link, which the listing leaves out.
            for (name, manifest) in skills_in(dir, &files) {
                let found = tree_hash_of(&manifest);
                if approved.contains(&found) {
                    continue;
                }
                let path = format!("{dir}/{name}");
                findings.push(Finding::new(
                    &self.container,
                    "skills.container_unapproved",
                    Severity::High,
                    format!("skill folder {path} inside the container is not an approved skill (tree hash {found})"),
                    json!({ "path": path, "tree_hash": found }),
                    now,
                ));
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

/// The manifest of every skill folder below `dir`, by folder name, from
/// the regular files the engine listed (sorted as the tree hash wants).
fn skills_in(dir: &str, files: &[HashedFile]) -> Vec<(String, Vec<ManifestEntry>)> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut skills: std::collections::BTreeMap<String, Vec<ManifestEntry>> =
        std::collections::BTreeMap::new();
    for file in files {
        let Some((name, relative)) = file
            .path
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        skills
            .entry(name.to_owned())
            .or_default()
            .push(ManifestEntry {
                path: relative.to_owned(),
                mode: if file.executable { 0o755 } else { 0o644 },
                size: file.size,
                sha256: file.sha256.clone(),
            });
    }
    skills
        .into_iter()
        .map(|(name, mut manifest)| {
            manifest.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            (name, manifest)
        })
        .collect()
}

/// Off Unix: the folder is not read, and the check says so (a
/// `check.failed` finding, never a pass).
#[cfg(not(unix))]
fn judge_folder(
    dir: &std::path::Path,
    _installed: &HashMap<String, String>,
    _approved: &std::collections::HashSet<String>,
    _limits: IntakeLimits,
) -> Result<Vec<(String, Verdict)>, String> {
    Err(format!(
        "{}: host skills folders are read on Unix only",
        dir.display()
    ))
}

/// Judges every top-level entry of skills folder `dir`.
#[cfg(unix)]
fn judge_folder(
    dir: &std::path::Path,
    installed: &HashMap<String, String>,
    approved: &std::collections::HashSet<String>,
    limits: IntakeLimits,
) -> Result<Vec<(String, Verdict)>, String> {
    use super::host_fs;
    use std::os::unix::ffi::OsStrExt;
    // No link followed on the way to the folder or in it.
    let folder = host_fs::open_dir(dir).map_err(|err| err.to_string())?;
    let listing = nix::unistd::dup(&folder)
        .and_then(nix::dir::Dir::from_fd)
        .map_err(|err| err.to_string())?;
    let (mut verdicts, mut bytes) = (Vec::new(), 0u64);
    for entry in listing {
        let entry = entry.map_err(|err| err.to_string())?;
        let raw = entry.file_name();
        if matches!(raw.to_bytes(), b"." | b"..") {
            continue;
        }
        let name = String::from_utf8_lossy(raw.to_bytes()).into_owned();
        if verdicts.len() >= MAX_FOLDERS_CHECKED || bytes > MAX_BYTES_CHECKED {
            let why = format!(
                "more than {MAX_FOLDERS_CHECKED} entries or {MAX_BYTES_CHECKED} bytes of skills; the rest were not checked"
            );
            verdicts.push(("…".to_owned(), Verdict::Unapproved(why)));
            break;
        }
        let stat = nix::sys::stat::fstatat(&folder, raw, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
        let verdict = match stat.map(|stat| host_fs::Kind::of(&stat)) {
            Ok(host_fs::Kind::Symlink) => {
                Verdict::Unapproved("a symbolic link where a skill folder could be".to_owned())
            }
            Ok(host_fs::Kind::Directory) => {
                let path = dir.join(std::ffi::OsStr::from_bytes(raw.to_bytes()));
                let (verdict, size) = judge_skill(&path, &name, installed, approved, limits);
                bytes = bytes.saturating_add(size);
                verdict
            }
            Ok(_) | Err(nix::errno::Errno::ENOENT) => Verdict::NotASkill,
            Err(err) => Verdict::Unapproved(format!("cannot be examined: {err}")),
        };
        verdicts.push((name, verdict));
    }
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(verdicts)
}

#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
fn judge_skill(
    path: &std::path::Path,
    name: &str,
    installed: &HashMap<String, String>,
    approved: &std::collections::HashSet<String>,
    limits: IntakeLimits,
) -> (Verdict, u64) {
    let (found, size) = match host_folder::read_folder(path, 0, limits) {
        Ok(tree) => (tree.tree_hash(), tree.total_bytes()),
        Err(err) => {
            let why = err.to_string();
            let verdict = match installed.get(name) {
                Some(ours) => Verdict::Tampered {
                    found: format!("unreadable as a skill: {why}"),
                    installed: ours.clone(),
                },
                None if matches!(err, SkillError::BadArchive(_)) && why.contains("no SKILL.md") => {
                    Verdict::NotASkill
                }
                None => Verdict::Unapproved(why),
            };
            return (verdict, 0);
        }
    };
    let verdict = match installed.get(name) {
        Some(ours) if *ours == found => Verdict::Approved,
        Some(ours) => Verdict::Tampered {
            found,
            installed: ours.clone(),
        },
        None if approved.contains(&found) => Verdict::Approved,
        None => Verdict::Unapproved(format!("tree hash {found}")),
    };
    (verdict, size)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_files: 10,
        max_file_bytes: 1024,
        max_total_bytes: 4096,
    };

    #[test]
    fn links_are_never_followed_and_a_pass_is_bounded() {
        let (installed, approved) = (HashMap::new(), std::collections::HashSet::new());
        let dir = tempfile::tempdir().unwrap();
        let skills = dir.path().join("skills");
        std::fs::create_dir(&skills).unwrap();
        std::os::unix::fs::symlink("/root", skills.join("sneaky")).unwrap();
        std::fs::create_dir(skills.join("not-a-skill")).unwrap();
        let verdicts = judge_folder(&skills, &installed, &approved, LIMITS).unwrap();
        assert_eq!(verdicts.len(), 2);
        assert_eq!(verdicts[0].1, Verdict::NotASkill);
        assert!(
            matches!(&verdicts[1].1, Verdict::Unapproved(why) if why.contains("symbolic link"))
        );
        // The skills folder itself a link: not followed, an error.
        std::os::unix::fs::symlink(&skills, dir.path().join("linked")).unwrap();
        assert!(judge_folder(&dir.path().join("linked"), &installed, &approved, LIMITS).is_err());
        // More entries than one pass checks: the rest are named as unchecked.
        for index in 0..MAX_FOLDERS_CHECKED + 5 {
            std::fs::create_dir(skills.join(format!("d{index}"))).unwrap();
        }
        let verdicts = judge_folder(&skills, &installed, &approved, LIMITS).unwrap();
        assert_eq!(verdicts.len(), MAX_FOLDERS_CHECKED + 1);
        assert!(
            verdicts
                .iter()
                .any(|(_, v)| matches!(v, Verdict::Unapproved(why) if why.contains("not checked")))
        );
    }
}
