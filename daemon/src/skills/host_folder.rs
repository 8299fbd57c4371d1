//! Submitting a skill folder that is already on the host, by path.
//!
//! Invariant: only a folder below one of the configured submission roots is
//! read; no link is followed anywhere on the way or inside (each folder is
//! opened relative to its parent with `O_NOFOLLOW`); only regular files and
//! folders are taken — a symlink, FIFO (never opened blocking), socket,
//! device or a file with more than one hard link is refused by name — and
//! only what the calling OS user could read themselves (owner or readable
//! by others, through folders they may search as owner or as anyone; root
//! reads all), so occcd never becomes a way to read files the caller could
//! not. Group and ACL grants are not counted: such folders are refused.

use std::path::{Component, Path, PathBuf};

use super::error::SkillError;
#[cfg(not(unix))]
use super::{intake::IntakeLimits, tree::SkillTree};

#[cfg(unix)]
mod read;
#[cfg(unix)]
pub use read::read_folder;

/// Checks `path` (absolute, plain) against `roots`: it must be a folder
/// strictly below one of them.
pub fn check_submission_path(path: &str, roots: &[PathBuf]) -> Result<PathBuf, SkillError> {
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(SkillError::input("path", "give the folder's absolute path"));
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(SkillError::input(
            "path",
            "`.` and `..` are not allowed in the path",
        ));
    }
    if roots.is_empty() {
        return Err(SkillError::Refused(
            "submitting folders from the host is off: set skills.submit_roots in occcd.toml"
                .to_owned(),
        ));
    }
    if !roots
        .iter()
        .any(|root| path.starts_with(root) && path != root)
    {
        let allowed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(SkillError::Refused(format!(
            "{} is not below a submission root ({})",
            path.display(),
            allowed.join(", ")
        )));
    }
    Ok(path.to_owned())
}

/// Off Unix: refused, saying why (the reading relies on `openat` with
/// `O_NOFOLLOW` and Unix permission bits).
#[cfg(not(unix))]
pub fn read_folder(path: &Path, _uid: u32, _limits: IntakeLimits) -> Result<SkillTree, SkillError> {
    Err(SkillError::Refused(format!(
        "{}: host skill folders are read on Unix only; submit an archive instead",
        path.display()
    )))
}

#[cfg(test)]
#[cfg(unix)]
#[path = "host_folder_tests.rs"]
mod tests;
