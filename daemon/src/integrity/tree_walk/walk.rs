//! The walk itself, over `openat` and `getdents` (Unix): see [`super`]'s
//! invariant.

use std::{
    ffi::OsStr,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
};

use nix::{
    dir::{Dir, OwningIter},
    errno::Errno,
    fcntl::{AtFlags, openat},
    sys::stat::{FileStat, Mode, fstatat},
};

use crate::integrity::host_fs::{HostFileError, Kind, dir_flags, io};

use super::{Enter, MAX_DEPTH, Unexamined};

/// One entry a walk saw.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path below the walk's root.
    pub relative: PathBuf,
    /// What it is.
    pub kind: Kind,
    /// Its `lstat`.
    pub stat: FileStat,
}

/// A folder being listed: its descriptor (to open entries relative to it)
/// and a stream of its entries.
struct Level {
    folder: OwnedFd,
    entries: OwningIter,
    relative: PathBuf,
    depth: usize,
}

impl Level {
    fn open(folder: OwnedFd, relative: PathBuf, depth: usize) -> Result<Self, Errno> {
        let listing = Dir::from_fd(nix::unistd::dup(&folder)?)?;
        Ok(Self {
            folder,
            entries: listing.into_iter(),
            relative,
            depth,
        })
    }
}

/// Walks the tree below `root` depth-first and calls `visit(folder, entry)`
/// for every entry (`folder` is the entry's open folder, to open it with
/// `host_fs::open_regular_at`; a folder is entered when `visit` says so)
/// and `unexamined(path, why)` for what it could not look into. Returns how
/// many entries it saw; fails only when `root` itself cannot be listed.
pub fn walk(
    root: OwnedFd,
    shown: &Path,
    visit: &mut dyn FnMut(&OwnedFd, &Entry) -> Enter,
    unexamined: &mut dyn FnMut(&Path, Unexamined),
) -> Result<usize, HostFileError> {
    let mut levels = vec![Level::open(root, PathBuf::new(), 0).map_err(|err| io(shown, err))?];
    let mut seen = 0;
    while let Some(level) = levels.last_mut() {
        let name = match level.entries.next() {
            None => {
                levels.pop();
                continue;
            }
            Some(Err(err)) => {
                unexamined(&level.relative, Unexamined::Refused(err.to_string()));
                levels.pop();
                continue;
            }
            Some(Ok(entry)) => entry.file_name().to_owned(),
        };
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let relative = level.relative.join(OsStr::from_bytes(name.to_bytes()));
        let stat = match fstatat(&level.folder, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Gone between listing and looking: nothing to see.
            Err(Errno::ENOENT) => continue,
            Err(err) => {
                unexamined(&relative, Unexamined::Refused(err.to_string()));
                continue;
            }
        };
        let entry = Entry {
            relative,
            kind: Kind::of(&stat),
            stat,
        };
        seen += 1;
        if visit(&level.folder, &entry) == Enter::No || entry.kind != Kind::Directory {
            continue;
        }
        if level.depth >= MAX_DEPTH {
            unexamined(&entry.relative, Unexamined::TooDeep);
            continue;
        }
        let depth = level.depth + 1;
        let opened = openat(&level.folder, name.as_c_str(), dir_flags(), Mode::empty())
            .and_then(|child| Level::open(child, entry.relative.clone(), depth));
        match opened {
            Ok(child) => levels.push(child),
            Err(Errno::ENOENT) => {}
            Err(err) => unexamined(&entry.relative, Unexamined::Refused(err.to_string())),
        }
    }
    Ok(seen)
}
