//! The `[skills]` section of occcd.toml.
//!
//! Invariant: every path is absolute and plain (no `.`/`..`); limits are
//! positive; without `install_dir`, approved skills are recorded but not
//! installed, and the monitor watches no skills folder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::intake::IntakeLimits;

/// Skill governance settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SkillsConfig {
    /// OpenClaw's managed skills folder, where approved skills go.
    pub install_dir: Option<PathBuf>,
    /// `uid:gid` that installed skills belong to (the OpenClaw user).
    pub install_owner: String,
    /// Further skills folders the monitor holds to the approved set.
    pub watch_dirs: Vec<PathBuf>,
    /// Skills folders inside the container that are not bind mounts of a
    /// host folder, checked through the engine at every hash sweep.
    pub container_dirs: Vec<String>,
    /// The watched container whose health skill findings count against
    /// (default: the first one configured).
    pub container: Option<String>,
    /// Folders below which SubmitSkillFolder may read (none: off).
    pub submit_roots: Vec<PathBuf>,
    /// Largest archive SubmitSkill accepts.
    pub max_archive_bytes: u64,
    /// Most files in a skill.
    pub max_files: usize,
    /// Largest file in a skill.
    pub max_file_bytes: u64,
    /// Most bytes a skill unpacks to.
    pub max_unpacked_bytes: u64,
}

impl Default for SkillsConfig {
    fn default() -> Self {
        Self {
            install_dir: None,
            install_owner: "1000:1000".to_owned(),
            watch_dirs: Vec::new(),
            container_dirs: Vec::new(),
            container: None,
            submit_roots: Vec::new(),
            max_archive_bytes: 64 * 1024 * 1024,
            max_files: 5_000,
            max_file_bytes: 32 * 1024 * 1024,
            max_unpacked_bytes: 128 * 1024 * 1024,
        }
    }
}

impl SkillsConfig {
    /// The intake limits.
    #[must_use]
    pub fn limits(&self) -> IntakeLimits {
        IntakeLimits {
            max_files: self.max_files,
            max_file_bytes: self.max_file_bytes,
            max_total_bytes: self.max_unpacked_bytes,
        }
    }

    /// `install_owner` as (uid, gid).
    pub fn owner(&self) -> Result<(u32, u32), String> {
        let (uid, gid) = self.install_owner.split_once(':').ok_or_else(|| {
            format!(
                "skills.install_owner {:?}: write it as uid:gid",
                self.install_owner
            )
        })?;
        let parse = |n: &str| {
            n.parse::<u32>().map_err(|_| {
                format!(
                    "skills.install_owner {:?}: uid and gid are numbers",
                    self.install_owner
                )
            })
        };
        Ok((parse(uid)?, parse(gid)?))
    }

    /// Every folder the monitor holds to the approved set.
    #[must_use]
    pub fn enforced_dirs(&self) -> Vec<PathBuf> {
        self.install_dir
            .iter()
            .chain(&self.watch_dirs)
            .cloned()
            .collect()
    }

    /// Checks paths and limits.
    pub fn validate(&self) -> Result<(), String> {
        for path in self.enforced_dirs().iter().chain(&self.submit_roots) {
            if !super::install::plain_absolute(path) {
                return Err(format!(
                    "skills: {} must be an absolute path without `.` or `..`",
                    path.display()
                ));
            }
        }
        for path in &self.container_dirs {
            if !super::install::plain_absolute(std::path::Path::new(path)) {
                return Err(format!(
                    "skills.container_dirs: {path} must be an absolute path without `.` or `..`"
                ));
            }
        }
        if self.max_files == 0
            || self.max_file_bytes == 0
            || self.max_unpacked_bytes == 0
            || self.max_archive_bytes == 0
        {
            return Err("skills: limits must be positive".to_owned());
        }
        self.owner().map(|_| ())
    }
}
