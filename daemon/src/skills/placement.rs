//! Placing approved skills in OpenClaw's skills folder and taking them
//! out, with the store's record of what occcd installed.
//!
//! Invariant: callers hold the install lock (the monitor's skills check
//! takes it too); a name is installed over only when what is there is the
//! version occcd recorded installing; the record changes right after the
//! files do, before the lock is released.

use std::sync::Arc;

use super::{
    content::ContentStore,
    error::SkillError,
    host_folder,
    install::{InstallTarget, Occupant},
    intake::IntakeLimits,
};
use crate::{
    clock::Clock,
    store::{SkillRow, Store},
};

/// Where approved skills go, and the record of what is there.
#[derive(Debug)]
pub struct Placement {
    store: Store,
    clock: Arc<dyn Clock>,
    content: ContentStore,
    target: Option<InstallTarget>,
    limits: IntakeLimits,
}

impl Placement {
    /// Placement into `target` (none: approvals install nothing).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        content: ContentStore,
        target: Option<InstallTarget>,
        limits: IntakeLimits,
    ) -> Self {
        Self {
            store,
            clock,
            content,
            target,
            limits,
        }
    }

    /// Whether there is an install folder.
    #[must_use]
    pub fn installs(&self) -> bool {
        self.target.is_some()
    }

    /// Refuses approval when the install folder holds something under the
    /// skill's name that occcd did not install; else whether installing
    /// replaces occcd's own earlier install (call under the install lock).
    pub async fn check_room(&self, row: &SkillRow) -> Result<bool, SkillError> {
        let Some(target) = &self.target else {
            return Ok(false);
        };
        if target.occupant(&row.name)? == Occupant::Free {
            return Ok(false);
        }
        let ours = self
            .store
            .installed_skills()
            .await?
            .into_iter()
            .find(|(name, _)| *name == row.name);
        let path = target.path_of(&row.name);
        let Some(ours) = ours else {
            return Err(SkillError::Refused(format!(
                "{} exists and is not a skill occcd installed; move it away, then approve again",
                path.display()
            )));
        };
        let ours = Some(ours);
        let present = host_folder::read_folder(&path, 0, self.limits).map(|tree| tree.tree_hash());
        match (ours, present) {
            (Some((_, installed)), Ok(present)) if installed == present => Ok(true),
            _ => Err(SkillError::Refused(format!(
                "{} exists and is not a skill occcd installed (or it changed since); move it away, then approve again",
                path.display()
            ))),
        }
    }

    /// Installs `row`'s version (from occcd's copy) under its name;
    /// `replace` as [`Self::check_room`] said; records it as the installed
    /// version of that name. Nothing without an install folder.
    pub async fn install(&self, row: &SkillRow, replace: bool) -> Result<(), SkillError> {
        let Some(target) = self.target.clone() else {
            return Ok(());
        };
        let (content, limits) = (self.content.clone(), self.limits);
        let (hash, name) = (row.tree_hash.clone(), row.name.clone());
        let installed = tokio::task::spawn_blocking(move || {
            let tree = content.load(&hash, limits)?;
            target.install(&name, &tree, replace)
        })
        .await
        .map_err(|err| SkillError::Disk(format!("install task failed: {err}")))?;
        installed?;
        for (name, hash) in self.store.installed_skills().await? {
            if name == row.name && hash != row.tree_hash {
                self.store.set_skill_installed(&hash, None).await?;
            }
        }
        self.store
            .set_skill_installed(&row.tree_hash, Some(self.clock.now().0))
            .await?;
        Ok(())
    }

    /// Removes `row`'s installed folder and records it as not installed.
    pub async fn uninstall(&self, row: &SkillRow) -> Result<(), SkillError> {
        let Some(target) = self.target.clone() else {
            return Ok(());
        };
        let name = row.name.clone();
        let removed = tokio::task::spawn_blocking(move || target.uninstall(&name))
            .await
            .map_err(|err| SkillError::Disk(format!("uninstall task failed: {err}")))?;
        removed?;
        self.store.set_skill_installed(&row.tree_hash, None).await?;
        Ok(())
    }
}
