//! occcd's own copy of every submitted skill version, in its state folder,
//! one archive file named by tree hash — what approval installs and DiffSkill compares.
//!
//! Invariant: a version's file (one archive per version) appears under its name
//! only once written whole (staging file, then rename); what is read back is checked
//! against its tree hash, so a copy that changed on disk — or was torn by a
//! crash before the system flushed it — is never installed.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use super::{
    error::SkillError,
    intake::IntakeLimits,
    tree::{SkillTree, is_tree_hash},
    unpack::{self, ArchiveFormat},
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
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .recursive(true)
            .create(&root)
            .map_err(|err| SkillError::disk(&root.display().to_string(), &err))?;
        Ok(Self { root })
    }

    fn file(&self, tree_hash: &str, format: ArchiveFormat) -> Result<PathBuf, SkillError> {
        if !is_tree_hash(tree_hash) {
            return Err(SkillError::input("tree_hash", "64 lowercase hex digits"));
        }
        let extension = match format {
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::Zip => "zip",
        };
        Ok(self.root.join(format!("{tree_hash}.{extension}")))
    }

    /// Keeps `tree`, whose tree hash is `hash`, as one file: the `original` archive it was
    /// unpacked from as it came, or else a tar written from it.
    pub fn keep(
        &self,
        tree: &SkillTree,
        hash: &str,
        original: Option<(ArchiveFormat, &[u8])>,
    ) -> Result<(), SkillError> {
        if self.file(hash, ArchiveFormat::Tar)?.is_file()
            || self.file(hash, ArchiveFormat::Zip)?.is_file()
        {
            return Ok(());
        }
        let fail = |err: std::io::Error| SkillError::disk("storing the skill", &err);
        if let Some((format, bytes)) = original {
            return self.write_file(&self.file(hash, format)?, bytes);
        }
        let mut builder = tar::Builder::new(Vec::with_capacity(
            usize::try_from(tree.total_bytes()).unwrap_or(0),
        ));
        for file in tree.files() {
            let mut header = tar::Header::new_gnu();
            header.set_size(file.contents.len() as u64);
            header.set_mode(file.mode());
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, &file.path, file.contents.as_slice())
                .map_err(fail)?;
        }
        let bytes = builder.into_inner().map_err(fail)?;
        self.write_file(&self.file(hash, ArchiveFormat::Tar)?, &bytes)
    }

    /// Writes `bytes` to `target` whole or not at all.
    fn write_file(&self, target: &Path, bytes: &[u8]) -> Result<(), SkillError> {
        let fail = |err: std::io::Error| SkillError::disk("storing the skill", &err);
        let staging = self.root.join(format!(".staging-{}", random_suffix()?));
        let mut options = crate::crypto::private_file_options();
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NOFOLLOW);
        let written = options
            .write(true)
            .create_new(true)
            .open(&staging)
            .and_then(|mut out| out.write_all(bytes))
            .and_then(|()| fs::rename(&staging, target))
            .map_err(fail);
        if written.is_err() {
            let _ = fs::remove_file(&staging);
        }
        // Not flushed: a copy torn by a crash fails its hash check when it
        // is loaded (approval then asks for the skill again), never installs.
        written
    }

    /// The version `tree_hash`, unpacked through the same checks as a
    /// submission and checked against its hash.
    pub fn load(&self, tree_hash: &str, limits: IntakeLimits) -> Result<SkillTree, SkillError> {
        let tar = self.file(tree_hash, ArchiveFormat::Tar)?;
        let (format, path) = if tar.is_file() {
            (ArchiveFormat::Tar, tar)
        } else {
            (
                ArchiveFormat::Zip,
                self.file(tree_hash, ArchiveFormat::Zip)?,
            )
        };
        let bytes =
            fs::read(path).map_err(|err| SkillError::disk("reading a stored skill", &err))?;
        let tree = unpack::unpack(format, &bytes, limits)?;
        if tree.tree_hash() != tree_hash {
            return Err(SkillError::Disk(format!(
                "occcd's stored copy of {tree_hash} no longer matches its hash; submit the skill again"
            )));
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_files: 50,
        max_file_bytes: 64 * 1024,
        max_total_bytes: 256 * 1024,
    };

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A copy swapped on disk for another valid skill, or torn (cut short
    /// as a crash before the flush leaves it), is never given back.
    #[test]
    fn a_changed_or_torn_copy_fails_its_hash_check() {
        let folder = tempfile::tempdir().unwrap();
        let store = ContentStore::open(folder.path().join("skills")).unwrap();
        let skill_md: &[u8] = b"---\nname: t\ndescription: d\n---\n";
        let archive = tar_of(&[("SKILL.md", skill_md), ("run.sh", &[b'x'; 4096])]);
        let tree = unpack::unpack(ArchiveFormat::Tar, &archive, LIMITS).unwrap();
        let hash = tree.tree_hash();
        store
            .keep(&tree, &hash, Some((ArchiveFormat::Tar, &archive)))
            .unwrap();
        assert_eq!(store.load(&hash, LIMITS).unwrap().tree_hash(), hash);
        let path = store.file(&hash, ArchiveFormat::Tar).unwrap();

        let swapped = tar_of(&[("SKILL.md", b"---\nname: t\ndescription: d\n---\nrm -rf ~\n")]);
        fs::write(&path, swapped).unwrap();
        let refused = store.load(&hash, LIMITS).unwrap_err().to_string();
        assert!(refused.contains("no longer matches its hash"), "{refused}");

        // Cut after the first file's data: a shorter tree, or no archive.
        fs::write(&path, &archive[..1024]).unwrap();
        assert!(store.load(&hash, LIMITS).is_err(), "a torn copy");
    }
}
