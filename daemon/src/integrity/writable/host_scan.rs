//! Scanning the trees from the host, one descriptor-relative open at a time
//! (Unix): see [`super`]'s invariant.

use std::{
    borrow::Cow,
    collections::HashMap,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::sys::stat::fstat;

use crate::integrity::{
    config::under,
    host_fs::{self, ExecutableBy, HostFileError, Kind},
    tree_walk::{self, Enter, Entry, Unexamined},
    trees::{OpenFailure, Tree},
};

use super::{ExamCache, Examined, FoundExecutable, MAX_REMEMBERED, Scan};

fn identity(entry: &Entry) -> (u64, i64, i64, i64, i64, u64) {
    let stat = &entry.stat;
    (
        stat.st_ino,
        stat.st_mtime,
        stat.st_mtime_nsec,
        stat.st_ctime,
        stat.st_ctime_nsec,
        u64::try_from(stat.st_size).unwrap_or(0),
    )
}

fn container_path(mount: &str, relative: &Path) -> String {
    let mount = mount.trim_end_matches('/');
    format!("{mount}/{}", relative.display())
}

/// Looks at the regular file `entry` (in `folder`) as `path`: `Ok(None)`
/// when it is not executable (or is gone), `Err` with why when it could not
/// be looked at.
fn examine(
    folder: &OwnedFd,
    entry: &Entry,
    path: &str,
    hash_limit: u64,
) -> Result<Option<FoundExecutable>, String> {
    let Some(name) = entry.relative.file_name() else {
        return Ok(None);
    };
    let shown = Path::new(path);
    let size = u64::try_from(entry.stat.st_size).unwrap_or(0);
    let mut file = match host_fs::open_regular_at(folder, name, shown) {
        Ok(file) => file,
        // Gone since the listing: nothing to see.
        Err(HostFileError::Missing(_)) => return Ok(None),
        // Swapped for a link, a FIFO, a device — or refused: not examined,
        // and said so (an executable's mode alone still counts).
        Err(err) => return Err(err.to_string()),
    };
    let head = host_fs::magic(&mut file).map_err(|err| format!("{path}: {err}"))?;
    let Some(by) = ExecutableBy::judge(entry.stat.st_mode, &head) else {
        return Ok(None);
    };
    let reopened = host_fs::open_regular_at(folder, name, shown);
    let (sha256, note) = match reopened.and_then(|file| host_fs::hash(file, hash_limit, shown)) {
        Ok((sha256, _)) => (Some(sha256), None),
        Err(HostFileError::TooLarge { limit, .. }) => {
            (None, Some(format!("larger than {limit} bytes: not hashed")))
        }
        Err(err) => (None, Some(err.to_string())),
    };
    Ok(Some(FoundExecutable {
        path: path.to_owned(),
        size,
        by: by.name(),
        sha256,
        note,
    }))
}

/// Looks at the single file `source` (in the open folder `folder`),
/// mounted at `mount`.
fn examine_file(
    folder: &OwnedFd,
    source: &Path,
    mount: &str,
    hash_limit: u64,
    exempt: &[String],
    result: &mut Scan,
) {
    let Some(name) = source.file_name() else {
        return;
    };
    let stat = match nix::sys::stat::fstatat(folder, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        Ok(stat) => stat,
        Err(nix::errno::Errno::ENOENT) => return,
        Err(err) => return result.not_examined(mount, &Unexamined::Refused(err.to_string())),
    };
    let entry = Entry {
        relative: PathBuf::from(name),
        kind: Kind::of(&stat),
        stat,
    };
    result.entries += 1;
    if entry.kind != Kind::Regular || under(mount, exempt) {
        return;
    }
    match examine(folder, &entry, mount, hash_limit) {
        Ok(Some(found)) => result.executables.push(found),
        Ok(None) => {}
        Err(why) => result.not_examined(mount, &Unexamined::Refused(why)),
    }
}

/// Scans `trees`, reading only what changed since `cache` last saw it;
/// paths under `exempt` (container paths) are not judged, changes in the
/// writable layer are listed when under `protected`.
pub fn scan(
    trees: &[Tree],
    cache: &mut ExamCache,
    hash_limit: u64,
    exempt: &[String],
    protected: &[String],
) -> Scan {
    let mut result = Scan::default();
    let mut still_there: HashMap<String, Examined> = HashMap::new();
    for tree in trees {
        let (tree, opened) = match (tree, tree.open()) {
            // A bind mount of one file: that file is the tree.
            (
                Tree::Mount { source, mount },
                Err(OpenFailure::Unreadable(HostFileError::NotRegular { .. })),
            ) => {
                let file = Tree::File {
                    source: source.clone(),
                    mount: mount.clone(),
                };
                let opened = file.open();
                (Cow::Owned(file), opened)
            }
            (tree, opened) => (Cow::Borrowed(tree), opened),
        };
        let (root, shown) = match opened {
            Ok(opened) => opened,
            Err(OpenFailure::Unreadable(err)) => {
                result
                    .unreadable
                    .push((tree.mount_point().to_owned(), err.to_string()));
                continue;
            }
            Err(OpenFailure::Tampered(err)) => {
                result.not_examined(tree.mount_point(), &Unexamined::Tampered(err.to_string()));
                continue;
            }
        };
        result.trees.push(shown.display().to_string());
        let mount = tree.mount_point().to_owned();
        if let Tree::File { source, .. } = tree.as_ref() {
            examine_file(&root, source, &mount, hash_limit, exempt, &mut result);
            continue;
        }
        let (is_layer, mount_points) = match tree.as_ref() {
            Tree::Layer { mount_points, .. } => (true, mount_points.as_slice()),
            _ => (false, [].as_slice()),
        };
        // A tmpfs walk stays on the tmpfs: what is mounted inside it is a
        // tree of its own. Other walks enter everything.
        let root_device = match tree.as_ref() {
            Tree::Tmpfs { .. } => fstat(&root).ok().map(|stat| stat.st_dev),
            _ => None,
        };
        let mut refused: Vec<(String, Unexamined)> = Vec::new();
        let mut missed: Vec<(String, Unexamined)> = Vec::new();
        let walked = tree_walk::walk(
            root,
            &shown,
            &mut |folder, entry| {
                let path = container_path(&mount, &entry.relative);
                if root_device.is_some_and(|device| device != entry.stat.st_dev) {
                    return Enter::No;
                }
                // The engine's placeholders for what is mounted over the
                // layer are not judged; what is inside them still is.
                if mount_points.contains(&path) {
                    return Enter::Yes;
                }
                if is_layer && entry.kind != Kind::Directory {
                    let whiteout = entry.kind == Kind::CharDevice && entry.stat.st_rdev == 0;
                    result.layer_change(&path, whiteout, protected);
                }
                if entry.kind != Kind::Regular || under(&path, exempt) {
                    return Enter::Yes;
                }
                let id = identity(entry);
                let examined = match cache.files.get(&path) {
                    Some(known) if known.identity == id => known.clone(),
                    _ => match examine(folder, entry, &path, hash_limit) {
                        Ok(found) => Examined {
                            identity: id,
                            found,
                        },
                        // Not remembered: looked at again next time.
                        Err(why) => {
                            refused.push((path, Unexamined::Refused(why)));
                            return Enter::Yes;
                        }
                    },
                };
                if let Some(found) = &examined.found {
                    result.executables.push(found.clone());
                }
                if still_there.len() < MAX_REMEMBERED || examined.found.is_some() {
                    still_there.insert(path, examined);
                }
                Enter::Yes
            },
            &mut |relative, why| missed.push((container_path(&mount, relative), why)),
        );
        for (path, why) in refused.iter().chain(&missed) {
            result.not_examined(path, why);
        }
        match walked {
            Ok(seen) => result.entries += seen,
            Err(err) => result.unreadable.push((mount, err.to_string())),
        }
    }
    cache.files = still_there;
    result.executables.sort_by(|a, b| a.path.cmp(&b.path));
    result
}
