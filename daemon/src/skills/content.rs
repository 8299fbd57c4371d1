//! occcd's own copy of every submitted skill version, in its state folder,
//! named by tree hash — what approval installs and DiffSkill compares.
//!
//! Invariant: a version's folder appears whole or not at all (written in a
//! staging folder, synced, then renamed); what is read back is checked
//! against its tree hash, so a copy that changed on disk is never
//! installed.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::{
    error::SkillError,
    intake::{Intake, IntakeLimits},
    tree::{SkillTree, is_tree_hash},
};

/// The content store under `<state dir>/skills`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

fn random_suffix() -> Result<String, SkillError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SkillError::Disk("random generator failed".to_owned()))?;
    Ok(hex::encode(bytes))
}

impl ContentStore {
    /// The store at `root` (created 0700 if missing).
    pub fn open(root: PathBuf) -> Result<Self, SkillError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|err| SkillError::disk(&root.display().to_string(), &err))?;
        Ok(Self { root })
    }

    fn folder(&self, tree_hash: &str) -> Result<PathBuf, SkillError> {
        if !is_tree_hash(tree_hash) {
            return Err(SkillError::input("tree_hash", "64 lowercase hex digits"));
        }
        Ok(self.root.join(tree_hash))
    }

    /// Keeps `tree` (a no-op when that version is kept already).
    pub fn keep(&self, tree: &SkillTree) -> Result<(), SkillError> {
        let hash = tree.tree_hash();
        let target = self.folder(&hash)?;
        if target.is_dir() {
            return Ok(());
        }
        let staging = self.root.join(format!(".staging-{}", random_suffix()?));
        let written = write_tree(&staging, tree).and_then(|()| {
            fs::rename(&staging, &target).map_err(|err| SkillError::disk("storing the skill", &err))
        });
        if written.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        written
    }

    /// The version `tree_hash`, checked against its hash.
    pub fn load(&self, tree_hash: &str, limits: IntakeLimits) -> Result<SkillTree, SkillError> {
        let folder = self.folder(tree_hash)?;
        let mut intake = Intake::new(limits);
        let mut stack = vec![folder.clone()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir)
                .map_err(|err| SkillError::disk("reading a stored skill", &err))?;
            for entry in entries {
                let entry =
                    entry.map_err(|err| SkillError::disk("reading a stored skill", &err))?;
                let meta = fs::symlink_metadata(entry.path())
                    .map_err(|err| SkillError::disk("reading a stored skill", &err))?;
                if meta.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                let relative = entry
                    .path()
                    .strip_prefix(&folder)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let path = relative.to_string_lossy().into_owned();
                let contents = fs::read(entry.path())
                    .map_err(|err| SkillError::disk("reading a stored skill", &err))?;
                intake.add(path, meta.permissions().mode() & 0o111 != 0, contents)?;
            }
        }
        let tree = intake.finish()?;
        if tree.tree_hash() != tree_hash {
            return Err(SkillError::Disk(format!(
                "occcd's stored copy of {tree_hash} no longer matches its hash; submit the skill again"
            )));
        }
        Ok(tree)
    }
}

/// Writes `tree` into the new folder `folder`, synced.
fn write_tree(folder: &Path, tree: &SkillTree) -> Result<(), SkillError> {
    let fail = |err: std::io::Error| SkillError::disk("storing the skill", &err);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(folder)
        .map_err(fail)?;
    for file in tree.files() {
        let path = folder.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(fail)?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o700 } else { 0o600 })
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(fail)?;
        out.write_all(&file.contents).map_err(fail)?;
        out.sync_all().map_err(fail)?;
    }
    fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(fail)
}
