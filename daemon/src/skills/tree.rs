//! A skill as occcd sees it: its files (relative path, executable or not,
//! contents) and the hashes that name it — the tree hash that approvals
//! pin, and ClawHub's fingerprint to match registry installs.
//!
//! Invariant: the tree hash covers every file's path, executable bit and
//! contents and nothing else (no timestamps, owners or other mode bits), so
//! any change of one byte, one name or one executable bit is a different
//! skill; its encoding is the one docs/skills.md spells out.

use ring::digest::{Context, SHA256, digest};

/// Prefix of the tree-hash input; the version changes if the encoding does.
const TREE_HASH_HEADER: &[u8] = b"occc-skill-tree-v1\n";

/// One file of a skill.
#[derive(Clone, PartialEq, Eq)]
pub struct SkillFile {
    /// Relative path, `/`-separated, validated (see `paths`).
    pub path: String,
    /// Whether any execute bit was set.
    pub executable: bool,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for SkillFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkillFile")
            .field("path", &self.path)
            .field("executable", &self.executable)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

impl SkillFile {
    /// The file's mode as installed and as hashed: `755` or `644`.
    #[must_use]
    pub fn mode(&self) -> u32 {
        if self.executable { 0o755 } else { 0o644 }
    }

    /// SHA-256 of the contents, lowercase hex.
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        hex::encode(digest(&SHA256, &self.contents))
    }
}

/// One entry of a skill's manifest (what the store keeps per file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    /// Relative path.
    pub path: String,
    /// `0o755` or `0o644`.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// A skill's files, sorted by path (byte order), with no duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillTree {
    files: Vec<SkillFile>,
}

impl SkillTree {
    /// `files` sorted by path; the caller has refused duplicates.
    #[must_use]
    pub fn new(mut files: Vec<SkillFile>) -> Self {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Self { files }
    }

    /// The files, sorted by path.
    #[must_use]
    pub fn files(&self) -> &[SkillFile] {
        &self.files
    }

    /// The file at `path`, if any.
    #[must_use]
    pub fn file(&self, path: &str) -> Option<&SkillFile> {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .and_then(|index| self.files.get(index))
    }

    /// Total size of the contents.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.contents.len() as u64).sum()
    }

    /// The manifest: path, mode, size and SHA-256 of each file.
    #[must_use]
    pub fn manifest(&self) -> Vec<ManifestEntry> {
        self.files
            .iter()
            .map(|f| ManifestEntry {
                path: f.path.clone(),
                mode: f.mode(),
                size: f.contents.len() as u64,
                sha256: f.sha256_hex(),
            })
            .collect()
    }

    /// The tree hash (lowercase hex) of this skill.
    #[must_use]
    pub fn tree_hash(&self) -> String {
        tree_hash_of(&self.manifest())
    }

    /// ClawHub's fingerprint of this skill (lowercase hex).
    #[must_use]
    pub fn clawhub_fingerprint(&self) -> String {
        clawhub_fingerprint_of(&self.manifest())
    }
}

/// The tree hash of a manifest sorted by path: SHA-256 over
/// `occc-skill-tree-v1\n`, then per file `<mode octal> <path>\0<sha256 hex>\n`.
#[must_use]
pub fn tree_hash_of(manifest: &[ManifestEntry]) -> String {
    let mut context = Context::new(&SHA256);
    context.update(TREE_HASH_HEADER);
    for entry in manifest {
        context.update(format!("{:o} ", entry.mode).as_bytes());
        context.update(entry.path.as_bytes());
        context.update(b"\0");
        context.update(entry.sha256.as_bytes());
        context.update(b"\n");
    }
    hex::encode(context.finish())
}

/// ClawHub's fingerprint: SHA-256 over the sorted `path:sha256` lines,
/// joined by `\n`.
#[must_use]
pub fn clawhub_fingerprint_of(manifest: &[ManifestEntry]) -> String {
    let lines: Vec<String> = manifest
        .iter()
        .map(|entry| format!("{}:{}", entry.path, entry.sha256))
        .collect();
    hex::encode(digest(&SHA256, lines.join("\n").as_bytes()))
}

/// Whether `hash` looks like a tree hash (64 lowercase hex digits).
#[must_use]
pub fn is_tree_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, executable: bool, contents: &str) -> SkillFile {
        SkillFile {
            path: path.to_owned(),
            executable,
            contents: contents.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_tree_hash_is_the_documented_encoding() {
        let tree = SkillTree::new(vec![
            file("scripts/run.sh", true, "echo hi\n"),
            file("SKILL.md", false, "---\nname: a\n---\n"),
        ]);
        // Recomputed by hand as docs/skills.md describes (sorted by path bytes).
        let md = hex::encode(digest(&SHA256, b"---\nname: a\n---\n"));
        let sh = hex::encode(digest(&SHA256, b"echo hi\n"));
        let input = format!("occc-skill-tree-v1\n644 SKILL.md\0{md}\n755 scripts/run.sh\0{sh}\n");
        assert_eq!(
            tree.tree_hash(),
            hex::encode(digest(&SHA256, input.as_bytes()))
        );
        let lines = format!("SKILL.md:{md}\nscripts/run.sh:{sh}");
        assert_eq!(
            tree.clawhub_fingerprint(),
            hex::encode(digest(&SHA256, lines.as_bytes()))
        );
        assert!(is_tree_hash(&tree.tree_hash()));
    }

    #[test]
    fn one_byte_one_name_or_one_execute_bit_is_another_skill() {
        let base = SkillTree::new(vec![file("SKILL.md", false, "a")]);
        let byte = SkillTree::new(vec![file("SKILL.md", false, "b")]);
        let name = SkillTree::new(vec![file("skill.md", false, "a")]);
        let exec = SkillTree::new(vec![file("SKILL.md", true, "a")]);
        let hashes = [&base, &byte, &name, &exec].map(SkillTree::tree_hash);
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(base.file("SKILL.md").map(|f| f.contents.len()), Some(1));
        assert!(base.file("nope").is_none());
    }
}
