//! What a container can write, read from the host: its writable layer
//! (overlay2's upper folder), its tmpfs mounts (through its root in
//! `/proc/<pid>/root`), and its writable bind mounts and volumes — every
//! file examined, executables found wherever they are.
//!
//! Invariant: every entry of every writable tree is seen, without a count
//! limit; a file is opened only as a regular file, through no link, and
//! only its first bytes are read unless it is executable (mode, ELF magic or
//! `#!`), whose SHA-256 is then computed up to a bound — a larger one is
//! reported as too large, never skipped; a file unchanged since the last
//! scan (same inode, size, mtime and ctime) is not read again. Blocking:
//! call it off the async runtime.

use std::{
    collections::HashMap,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use bollard::models::ContainerInspectResponse;
use nix::{
    fcntl::{OFlag, open},
    sys::stat::Mode,
};
use serde::Serialize;

use super::host_fs::{self, Entry, ExecutableBy, HostFileError, Kind};

/// One tree the container can write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tree {
    /// overlay2's upper folder: the container's writable layer, at `/`.
    Layer {
        /// Host path of the upper folder.
        upper: PathBuf,
        /// Container paths something is mounted over: the layer holds only
        /// the engine's placeholders for them (an empty 0755 file for a
        /// bind-mounted file), not what the container sees there.
        mount_points: Vec<String>,
    },
    /// A tmpfs mounted at `mount` inside the container, reached through
    /// the root of the container's process `pid`.
    Tmpfs {
        /// Host pid of the container's main process.
        pid: u32,
        /// Mount point inside the container.
        mount: String,
    },
    /// A writable bind mount or volume: host `source` at `mount`.
    Mount {
        /// Host path.
        source: PathBuf,
        /// Mount point inside the container.
        mount: String,
    },
}

impl Tree {
    /// Where it appears inside the container.
    #[must_use]
    pub fn mount_point(&self) -> &str {
        match self {
            Self::Layer { .. } => "/",
            Self::Tmpfs { mount, .. } | Self::Mount { mount, .. } => mount,
        }
    }

    fn open(&self) -> Result<(OwnedFd, PathBuf), HostFileError> {
        match self {
            Self::Layer { upper, .. } => Ok((host_fs::open_dir(upper)?, upper.clone())),
            Self::Mount { source, .. } => Ok((host_fs::open_dir(source)?, source.clone())),
            Self::Tmpfs { pid, mount } => {
                // The magic link is the one link followed: into the
                // container's own root; below it, none.
                let root_path = PathBuf::from(format!("/proc/{pid}/root"));
                let shown = root_path.join(mount.trim_start_matches('/'));
                let root = open(
                    &root_path,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| HostFileError::Io {
                    path: root_path.display().to_string(),
                    message: err.to_string(),
                })?;
                let below = Path::new(mount.trim_start_matches('/'));
                Ok((host_fs::open_dir_below(root, below, &shown)?, shown))
            }
        }
    }
}

/// The writable trees of a container, from its inspect document.
#[must_use]
pub fn trees_of(inspect: &ContainerInspectResponse) -> Vec<Tree> {
    let mut trees = Vec::new();
    let mut mount_points: Vec<String> = [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/dev/shm",
    ]
    .map(str::to_owned)
    .to_vec();
    mount_points.extend(
        inspect
            .mounts
            .iter()
            .flatten()
            .filter_map(|mount| mount.destination.clone()),
    );
    if let Some(host) = &inspect.host_config {
        mount_points.extend(host.tmpfs.iter().flatten().map(|(mount, _)| mount.clone()));
    }
    let driver = inspect.graph_driver.as_ref();
    if let Some(upper) = driver
        .filter(|driver| driver.name == "overlay2")
        .and_then(|driver| driver.data.get("UpperDir"))
    {
        trees.push(Tree::Layer {
            upper: PathBuf::from(upper),
            mount_points,
        });
    }
    let pid = inspect
        .state
        .as_ref()
        .and_then(|state| state.pid)
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0);
    let mut tmpfs: Vec<String> = vec!["/dev/shm".to_owned()];
    if let Some(host) = &inspect.host_config {
        tmpfs.extend(host.tmpfs.iter().flatten().map(|(mount, _)| mount.clone()));
    }
    for mount in inspect.mounts.iter().flatten() {
        let destination = mount.destination.clone().unwrap_or_default();
        let writable = mount.rw.unwrap_or(false);
        match mount.typ.as_deref() {
            Some("tmpfs") => tmpfs.push(destination),
            Some("bind" | "volume") if writable => {
                if let Some(source) = &mount.source {
                    trees.push(Tree::Mount {
                        source: PathBuf::from(source),
                        mount: destination,
                    });
                }
            }
            _ => {}
        }
    }
    tmpfs.sort();
    tmpfs.dedup();
    if let Some(pid) = pid {
        trees.extend(tmpfs.into_iter().map(|mount| Tree::Tmpfs { pid, mount }));
    }
    trees
}

/// An executable file found in a writable tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundExecutable {
    /// Path inside the container.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Why it counts as executable.
    pub by: &'static str,
    /// SHA-256, unless it was too large or unreadable.
    pub sha256: Option<String>,
    /// Why there is no hash.
    pub note: Option<String>,
}

/// What one scan saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Container paths of everything in the writable layer (added,
    /// changed or deleted since the image), with `deleted` for whiteouts.
    pub layer_changes: Vec<(String, bool)>,
    /// Executables in any writable tree.
    pub executables: Vec<FoundExecutable>,
    /// Trees that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Entries seen.
    pub entries: usize,
    /// Trees read.
    pub trees: Vec<String>,
}

#[derive(Debug, Clone)]
struct Examined {
    identity: (u64, i64, i64, i64, i64, u64),
    found: Option<FoundExecutable>,
}

/// Verdicts of earlier scans, so unchanged files are not read again.
#[derive(Debug, Default)]
pub struct ExamCache {
    files: HashMap<String, Examined>,
}

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

/// Looks at the regular file `entry` (in `folder`) as `path`.
fn examine(
    folder: &OwnedFd,
    entry: &Entry,
    path: &str,
    hash_limit: u64,
) -> Option<FoundExecutable> {
    let name = entry.relative.file_name()?;
    let shown = Path::new(path);
    let size = u64::try_from(entry.stat.st_size).unwrap_or(0);
    let mut file = match host_fs::open_regular_at(folder, name, shown) {
        Ok(file) => file,
        // Swapped or gone since the listing: the next scan sees what it became.
        Err(_) => return None,
    };
    let head = host_fs::magic(&mut file).unwrap_or_default();
    let by = ExecutableBy::judge(entry.stat.st_mode, &head)?;
    let reopened = host_fs::open_regular_at(folder, name, shown);
    let (sha256, note) = match reopened.and_then(|file| host_fs::hash(file, hash_limit, shown)) {
        Ok((sha256, _)) => (Some(sha256), None),
        Err(HostFileError::TooLarge { limit, .. }) => {
            (None, Some(format!("larger than {limit} bytes: not hashed")))
        }
        Err(err) => (None, Some(err.to_string())),
    };
    Some(FoundExecutable {
        path: path.to_owned(),
        size,
        by: by.name(),
        sha256,
        note,
    })
}

/// Scans `trees`, reading only what changed since `cache` last saw it;
/// paths under `exempt` (container paths) are not judged.
pub fn scan(trees: &[Tree], cache: &mut ExamCache, hash_limit: u64, exempt: &[String]) -> Scan {
    let mut result = Scan::default();
    let mut still_there: HashMap<String, Examined> = HashMap::new();
    for tree in trees {
        let (root, shown) = match tree.open() {
            Ok(opened) => opened,
            Err(err) => {
                result
                    .unreadable
                    .push((tree.mount_point().to_owned(), err.to_string()));
                continue;
            }
        };
        result.trees.push(shown.display().to_string());
        let mount = tree.mount_point().to_owned();
        let (is_layer, mount_points) = match tree {
            Tree::Layer { mount_points, .. } => (true, mount_points.as_slice()),
            _ => (false, [].as_slice()),
        };
        let walked = host_fs::walk(root, &shown, &mut |folder, entry| {
            let path = container_path(&mount, &entry.relative);
            if mount_points.contains(&path) {
                return;
            }
            if is_layer {
                let whiteout = entry.kind == Kind::CharDevice && entry.stat.st_rdev == 0;
                if entry.kind != Kind::Directory {
                    result.layer_changes.push((path.clone(), whiteout));
                }
            }
            if entry.kind != Kind::Regular || super::sweep::under(&path, exempt) {
                return;
            }
            let id = identity(entry);
            let examined = match cache.files.get(&path) {
                Some(known) if known.identity == id => known.clone(),
                _ => Examined {
                    identity: id,
                    found: examine(folder, entry, &path, hash_limit),
                },
            };
            if let Some(found) = &examined.found {
                result.executables.push(found.clone());
            }
            still_there.insert(path, examined);
        });
        match walked {
            Ok(seen) => result.entries += seen,
            Err(err) => result.unreadable.push((mount, err.to_string())),
        }
    }
    cache.files = still_there;
    result.executables.sort_by(|a, b| a.path.cmp(&b.path));
    result.layer_changes.sort();
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn every_executable_is_found_once_and_unchanged_files_are_not_read_again() {
        let upper = tempfile::tempdir().unwrap();
        let mount = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(upper.path().join("tmp/deep/er")).unwrap();
        let tool = upper.path().join("tmp/deep/er/node");
        std::fs::write(&tool, b"\x7fELF....").unwrap();
        std::fs::write(upper.path().join("tmp/notes.txt"), "hello").unwrap();
        let big = mount.path().join("big.sh");
        std::fs::write(&big, "#!/bin/sh\n".repeat(100)).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o700)).unwrap();
        let trees = [
            Tree::Layer {
                upper: upper.path().to_owned(),
                mount_points: vec!["/home/node/.openclaw".to_owned()],
            },
            Tree::Mount {
                source: mount.path().to_owned(),
                mount: "/home/node/.openclaw".to_owned(),
            },
        ];
        let mut cache = ExamCache::default();
        let scan1 = scan(&trees, &mut cache, 100, &[]);
        let found: Vec<(&str, &str, bool)> = scan1
            .executables
            .iter()
            .map(|f| (f.path.as_str(), f.by, f.sha256.is_some()))
            .collect();
        assert_eq!(
            found,
            [
                ("/home/node/.openclaw/big.sh", "execute bit", false),
                ("/tmp/deep/er/node", "ELF binary", true),
            ]
        );
        assert!(
            scan1.executables[0]
                .note
                .as_deref()
                .unwrap()
                .contains("larger than")
        );
        assert_eq!(scan1.layer_changes.len(), 2, "{:?}", scan1.layer_changes);
        // Unchanged files keep their verdict.
        let scan2 = scan(&trees, &mut cache, 100, &[]);
        assert_eq!(scan2.executables, scan1.executables);
        // Exempt paths are not judged.
        let scan3 = scan(
            &trees,
            &mut cache,
            100,
            &["/home/node/.openclaw".to_owned()],
        );
        assert_eq!(scan3.executables.len(), 1);
    }
}
