//! Installing an approved skill into OpenClaw's skills folder, and
//! removing it on revocation.
//!
//! Invariant: every step works through descriptors of the skills folder
//! opened without following links, so a link planted by the OpenClaw user
//! is never followed; a skill appears whole or not at all (written in a
//! staging folder beside it, synced, owned by the OpenClaw user, then
//! renamed — an update is swapped in with one `RENAME_EXCHANGE`; one
//! `syncfs` flushes everything written before the rename); a folder
//! of the same name that occcd did not install is never replaced.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::Mutex as AsyncMutex;

#[cfg(not(target_os = "linux"))]
use super::{error::SkillError, tree::SkillTree};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::remove_tree_at;

/// Where and as whom skills are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// OpenClaw's managed skills folder (e.g. `~/.openclaw/skills`).
    pub folder: PathBuf,
    /// Owner of what is installed (the OpenClaw user).
    pub uid: u32,
    /// Group of what is installed.
    pub gid: u32,
}

/// What is at `name` in the skills folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupant {
    /// Nothing.
    Free,
    /// Something (checked by the caller against what occcd installed).
    Taken,
}

impl InstallTarget {
    /// Removes what installs or removals cut short by a crash left in the skills
    /// folder, off the start-up path (the OpenClaw user can make that tree
    /// large); installs wait for it, holding `install_lock` from now on.
    pub fn clean_up_in_background(self, install_lock: &Arc<AsyncMutex<()>>) {
        let Ok(installing) = Arc::clone(install_lock).try_lock_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _installing = installing;
            match tokio::task::spawn_blocking(move || self.remove_leftovers()).await {
                Ok(Ok(removed)) if !removed.is_empty() => {
                    tracing::info!(?removed, "removed what interrupted skill installs left");
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "could not remove what interrupted skill installs left");
                }
                Err(err) => tracing::warn!(error = %err, "the skills folder clean-up stopped"),
            }
        });
    }

    /// The path `name` is installed at.
    #[must_use]
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }
}

#[cfg(not(target_os = "linux"))]
impl InstallTarget {
    fn unsupported() -> SkillError {
        SkillError::Refused(
            "installing skills into OpenClaw's folder needs Linux (renameat2 swaps); not on this platform yet"
                .to_owned(),
        )
    }

    /// Off Linux: refused, saying why.
    pub fn occupant(&self, _name: &str) -> Result<Occupant, SkillError> {
        Err(Self::unsupported())
    }

    /// Off Linux: refused, saying why.
    pub fn install(
        &self,
        _name: &str,
        _tree: &SkillTree,
        _replace: bool,
    ) -> Result<(), SkillError> {
        Err(Self::unsupported())
    }

    /// Off Linux: refused, saying why.
    pub fn uninstall(&self, _name: &str) -> Result<(), SkillError> {
        Err(Self::unsupported())
    }

    /// Off Linux nothing is installed, so nothing is left over.
    pub fn remove_leftovers(&self) -> Result<Vec<String>, SkillError> {
        Ok(Vec::new())
    }
}

/// Whether `path` is a plain absolute folder path (config check).
#[must_use]
pub fn plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

#[cfg(test)]
#[cfg(target_os = "linux")]
#[path = "install_tests.rs"]
mod tests;
