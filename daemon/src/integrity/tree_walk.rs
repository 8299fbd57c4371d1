//! Walking a host folder tree the container can write to, without letting
//! it steer the walk, exhaust occcd's descriptors or hide below it.
//!
//! Invariant: every entry is seen or named as unexamined — a folder that
//! cannot be opened or listed, or one nested deeper than [`MAX_DEPTH`], is
//! reported to the caller, never skipped silently; no link is followed
//! (each folder is opened relative to its parent with `O_NOFOLLOW`) and the
//! walk never leaves the tree; at most two descriptors per level of the
//! current path are open, however wide the tree, and entries are read from
//! the kernel as they are needed, never a whole folder at once.

#[cfg(unix)]
mod walk;
#[cfg(unix)]
pub use walk::{Entry, walk};

/// Deepest folder a walk descends into; below it, folders are reported.
pub const MAX_DEPTH: usize = 128;

/// Why part of a tree was not examined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unexamined {
    /// A folder nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An entry or folder the system refused, with what it said.
    Refused(String),
    /// Not what the container was given (a mount moved away, a folder in
    /// its place), with what was found.
    Tampered(String),
}

/// Whether a walk enters a folder it visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enter {
    /// Enter it (if it is a folder).
    Yes,
    /// Do not: it is another tree, seen on its own.
    No,
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use std::path::Path;

    use super::*;
    use crate::integrity::host_fs::{ExecutableBy, Kind, magic, open_dir, open_regular_at};

    type Seen = Vec<(String, Kind)>;
    type Missed = Vec<(String, Unexamined)>;

    fn walk_all(dir: &Path) -> (usize, Seen, Missed) {
        let mut seen = Vec::new();
        let mut missed = Vec::new();
        let count = walk(
            open_dir(dir).unwrap(),
            dir,
            &mut |_, entry| {
                seen.push((entry.relative.display().to_string(), entry.kind));
                Enter::Yes
            },
            &mut |path, why| missed.push((path.display().to_string(), why)),
        )
        .unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        (count, seen, missed)
    }

    #[test]
    fn a_walk_sees_every_entry_and_leaves_through_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host-file"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/tool"), "#!/bin/sh\n").unwrap();
        let elf = dir.path().join("a/bin");
        std::fs::write(&elf, b"\x7fELF rest").unwrap();
        std::fs::set_permissions(&elf, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(outside.path(), dir.path().join("escape")).unwrap();
        let mut judged = Vec::new();
        walk(
            open_dir(dir.path()).unwrap(),
            dir.path(),
            &mut |folder, entry| {
                if entry.kind == Kind::Regular {
                    let name = entry.relative.file_name().unwrap();
                    let mut file = open_regular_at(folder, name, &entry.relative).unwrap();
                    let by = ExecutableBy::judge(entry.stat.st_mode, &magic(&mut file).unwrap());
                    judged.push((entry.relative.display().to_string(), by));
                }
                Enter::Yes
            },
            &mut |path, why| panic!("{} {why:?}", path.display()),
        )
        .unwrap();
        judged.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            judged,
            [
                ("a/b/tool".to_owned(), Some(ExecutableBy::Script)),
                ("a/bin".to_owned(), Some(ExecutableBy::Mode)),
            ]
        );
        let (count, seen, missed) = walk_all(dir.path());
        assert_eq!(count, 5);
        assert!(missed.is_empty());
        assert_eq!(
            seen,
            [
                ("a".to_owned(), Kind::Directory),
                ("a/b".to_owned(), Kind::Directory),
                ("a/b/tool".to_owned(), Kind::Regular),
                ("a/bin".to_owned(), Kind::Regular),
                ("escape".to_owned(), Kind::Symlink),
            ]
        );
    }

    #[test]
    fn folders_too_deep_are_named_and_wide_trees_hold_few_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for _ in 0..=MAX_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("payload"), b"\x7fELF").unwrap();
        for wide in 0..2000 {
            std::fs::create_dir(dir.path().join(format!("w{wide}"))).unwrap();
        }
        let open_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let mut most_open = 0;
        let mut missed = Vec::new();
        let count = walk(
            open_dir(dir.path()).unwrap(),
            dir.path(),
            &mut |_, _| {
                let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
                most_open = most_open.max(open.saturating_sub(open_before));
                Enter::Yes
            },
            &mut |path, why| missed.push((path.components().count(), why)),
        )
        .unwrap();
        assert_eq!(count, 2000 + MAX_DEPTH + 1);
        // The deepest folder is named, never entered; the payload below it
        // is not seen, and the caller knows.
        assert_eq!(missed, [(MAX_DEPTH + 1, Unexamined::TooDeep)]);
        // Two per level of the deepest path (plus the listing's own), not
        // one per folder of the tree (other tests' files come and go).
        assert!(most_open <= 2 * (MAX_DEPTH + 2) + 16, "{most_open}");
    }

    #[test]
    fn a_folder_that_cannot_be_listed_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("closed")).unwrap();
        std::fs::write(dir.path().join("closed/tool"), b"\x7fELF").unwrap();
        std::fs::write(dir.path().join("open"), "x").unwrap();
        // A name the walk sees but cannot open as a folder: swapped for a
        // file between the listing and the open.
        let mut swapped = false;
        let mut missed = Vec::new();
        walk(
            open_dir(dir.path()).unwrap(),
            dir.path(),
            &mut |_, entry| {
                if entry.relative == Path::new("closed") && !swapped {
                    swapped = true;
                    std::fs::remove_dir_all(dir.path().join("closed")).unwrap();
                    symlink("/", dir.path().join("closed")).unwrap();
                }
                Enter::Yes
            },
            &mut |path, why| missed.push((path.display().to_string(), why)),
        )
        .unwrap();
        assert!(swapped);
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert_eq!(missed[0].0, "closed");
    }
}
