//! What every way into occcd (archive entry, host folder) must pass before a
//! file becomes part of a submitted skill: a safe relative UTF-8 path, no
//! duplicate (also none differing only in case), and the limits on files
//! and bytes.
//!
//! Invariant: a path that is absolute, has `.`/`..`/empty components,
//! backslashes, control characters, or names a file below another file is
//! refused with the entry's name; no more than the configured files and
//! bytes are ever held, counted before the bytes are read.

use std::collections::{HashMap, HashSet};

use super::{
    error::SkillError,
    tree::{SkillFile, SkillTree},
};

/// Longest relative path (bytes) and path component.
const MAX_PATH_BYTES: usize = 1024;
const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest folder nesting.
const MAX_DEPTH: usize = 16;

/// Limits on what one submission may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Most files.
    pub max_files: usize,
    /// Most bytes of one file.
    pub max_file_bytes: u64,
    /// Most bytes of all files together (unpacked).
    pub max_total_bytes: u64,
}

/// Collects a skill's files, refusing what may not be part of one.
#[derive(Debug)]
pub struct Intake {
    limits: IntakeLimits,
    files: Vec<SkillFile>,
    total: u64,
    /// Case-folded paths of files, and of the folders above them.
    seen_files: HashMap<String, String>,
    seen_folders: HashSet<String>,
}

impl Intake {
    /// An empty intake under `limits`.
    #[must_use]
    pub fn new(limits: IntakeLimits) -> Self {
        Self {
            limits,
            files: Vec::new(),
            total: 0,
            seen_files: HashMap::new(),
            seen_folders: HashSet::new(),
        }
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> IntakeLimits {
        self.limits
    }

    /// How many more bytes one file may have now (for bounded reads).
    #[must_use]
    pub fn room_for_next_file(&self) -> u64 {
        self.limits
            .max_file_bytes
            .min(self.limits.max_total_bytes.saturating_sub(self.total))
    }

    /// Checks that one more file named `path` (already checked) of
    /// `declared` bytes may come, before its bytes are read.
    pub fn admit(&self, path: &str, declared: u64) -> Result<(), SkillError> {
        if self.files.len() >= self.limits.max_files {
            return Err(SkillError::TooLarge(format!(
                "{path}: more than {} files in one skill",
                self.limits.max_files
            )));
        }
        if declared > self.limits.max_file_bytes {
            return Err(SkillError::TooLarge(format!(
                "{path}: {declared} bytes, more than the {} allowed for one file",
                self.limits.max_file_bytes
            )));
        }
        if self.total.saturating_add(declared) > self.limits.max_total_bytes {
            return Err(SkillError::TooLarge(format!(
                "{path}: the skill unpacks to more than {} bytes",
                self.limits.max_total_bytes
            )));
        }
        Ok(())
    }

    /// Adds file `path` (checked by [`checked_path`]) with `contents`.
    pub fn add(
        &mut self,
        path: String,
        executable: bool,
        contents: Vec<u8>,
    ) -> Result<(), SkillError> {
        let size = contents.len() as u64;
        self.admit(&path, size)?;
        let folded = path.to_lowercase();
        if let Some(earlier) = self.seen_files.get(&folded) {
            return Err(SkillError::BadArchive(format!(
                "{path}: duplicate entry (same name as {earlier}, ignoring case)"
            )));
        }
        if self.seen_folders.contains(&folded) {
            return Err(SkillError::BadArchive(format!(
                "{path}: a file where the skill also has a folder of that name"
            )));
        }
        let mut folder = String::new();
        for component in folded.split('/').take(folded.split('/').count() - 1) {
            if !folder.is_empty() {
                folder.push('/');
            }
            folder.push_str(component);
            if let Some(file) = self.seen_files.get(&folder) {
                return Err(SkillError::BadArchive(format!(
                    "{path}: lies below {file}, which is a file"
                )));
            }
            self.seen_folders.insert(folder.clone());
        }
        self.seen_files.insert(folded, path.clone());
        self.total += size;
        self.files.push(SkillFile {
            path,
            executable,
            contents,
        });
        Ok(())
    }

    /// The skill, if it has a `SKILL.md` at its top — or in the one folder
    /// every file is in (an archive of the skill's folder), which is then
    /// dropped from every path.
    pub fn finish(mut self) -> Result<SkillTree, SkillError> {
        let top = self
            .files
            .first()
            .and_then(|f| f.path.split_once('/'))
            .map(|(folder, _)| format!("{folder}/"));
        if let Some(top) = top
            && !self.files.iter().any(|f| f.path == "SKILL.md")
            && self.files.iter().all(|f| f.path.starts_with(&top))
            && self
                .files
                .iter()
                .any(|f| f.path == format!("{top}SKILL.md"))
        {
            for file in &mut self.files {
                file.path.drain(..top.len());
            }
        }
        if !self.files.iter().any(|f| f.path == "SKILL.md") {
            return Err(SkillError::BadArchive(
                "no SKILL.md at the top of the skill (a skill is a folder with SKILL.md in it)"
                    .to_owned(),
            ));
        }
        Ok(SkillTree::new(self.files))
    }
}

/// `raw` as a safe relative path (a trailing `/` is dropped), or why not.
pub fn checked_path(raw: &[u8]) -> Result<String, SkillError> {
    let shown = String::from_utf8_lossy(raw).escape_debug().to_string();
    let text = std::str::from_utf8(raw)
        .map_err(|_| SkillError::BadArchive(format!("{shown}: the name is not UTF-8")))?;
    let bad = |why: &str| SkillError::BadArchive(format!("{shown}: {why}"));
    let text = text.strip_prefix("./").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    if text.is_empty() {
        return Err(bad("empty name"));
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(bad("name longer than 1024 bytes"));
    }
    if text.starts_with('/') {
        return Err(bad("absolute path"));
    }
    if text.contains('\\') {
        return Err(bad("backslash in the name"));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("control character in the name"));
    }
    let components: Vec<&str> = text.split('/').collect();
    if components.len() > MAX_DEPTH {
        return Err(bad("nested more than 16 folders deep"));
    }
    for component in &components {
        match *component {
            "" => return Err(bad("empty path component")),
            "." | ".." => return Err(bad("`.` or `..` in the path (path traversal)")),
            c if c.len() > MAX_COMPONENT_BYTES => return Err(bad("a name longer than 255 bytes")),
            _ => {}
        }
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_files: 3,
        max_file_bytes: 10,
        max_total_bytes: 15,
    };

    #[test]
    fn unsafe_names_are_refused_by_name() {
        for (raw, why) in [
            (&b"/etc/passwd"[..], "absolute"),
            (b"../evil", "traversal"),
            (b"a/../../evil", "traversal"),
            (b"a//b", "empty path component"),
            (b"a\\b", "backslash"),
            (b"a\nb", "control"),
            (b"\xff\xfe", "not UTF-8"),
            (b"", "empty name"),
        ] {
            let err = checked_path(raw).unwrap_err().to_string();
            assert!(err.contains(why), "{raw:?}: {err}");
        }
        assert_eq!(checked_path(b"./scripts/run.sh").unwrap(), "scripts/run.sh");
        assert_eq!(checked_path(b"scripts/").unwrap(), "scripts");
    }

    #[test]
    fn duplicates_conflicts_and_limits_are_refused() {
        let mut intake = Intake::new(LIMITS);
        intake
            .add("SKILL.md".into(), false, b"abc".to_vec())
            .unwrap();
        let dup = intake.add("skill.MD".into(), false, vec![]).unwrap_err();
        assert!(dup.to_string().contains("duplicate entry"), "{dup}");
        let below = intake.add("SKILL.md/x".into(), false, vec![]).unwrap_err();
        assert!(below.to_string().contains("which is a file"), "{below}");
        intake.add("a/b".into(), false, vec![]).unwrap();
        let over = intake.add("a".into(), false, vec![]).unwrap_err();
        assert!(over.to_string().contains("also has a folder"), "{over}");
        let big = intake.add("c".into(), false, vec![0; 11]).unwrap_err();
        assert!(matches!(big, SkillError::TooLarge(_)), "{big}");
        assert_eq!(intake.room_for_next_file(), 10);
        intake.add("c".into(), false, vec![0; 10]).unwrap();
        let many = intake.add("d".into(), false, vec![]).unwrap_err();
        assert!(many.to_string().contains("more than 3 files"), "{many}");
    }

    #[test]
    fn a_skill_needs_its_skill_md() {
        let mut intake = Intake::new(LIMITS);
        intake.add("README.md".into(), false, vec![]).unwrap();
        assert!(
            intake
                .finish()
                .unwrap_err()
                .to_string()
                .contains("no SKILL.md")
        );
        let mut wrapped = Intake::new(LIMITS);
        wrapped
            .add("weather/SKILL.md".into(), false, vec![])
            .unwrap();
        wrapped.add("weather/run.sh".into(), true, vec![]).unwrap();
        let tree = wrapped.finish().unwrap();
        let paths: Vec<&str> = tree.files().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["SKILL.md", "run.sh"]);
    }
}
