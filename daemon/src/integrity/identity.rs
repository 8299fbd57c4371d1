//! Which executables a container may run, and what each running process
//! really runs: at PinBaseline the executables of the image (overlay2's
//! lower folders), of its writable trees and of its running processes are
//! hashed; later every process is identified by the SHA-256 of its
//! `/proc/<pid>/exe`, whatever it calls itself.
//!
//! Invariant: a process is trusted only if its executable's hash was pinned
//! and its name is one of the names that executable was pinned under (its
//! paths, the links to it, or a pinned script run by it); one that runs an
//! unpinned executable, or calls itself by another name, is critical. Where
//! `/proc/<pid>/exe` cannot be read (or nothing was pinned), the process is
//! judged by name only and the finding says so. Blocking: call it off the
//! async runtime.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use bollard::models::ContainerInspectResponse;
use nix::{
    fcntl::{OFlag, open},
    sys::stat::{Mode, fstat},
};
use serde::{Deserialize, Serialize};

use super::{
    host_fs::{self, ExecutableBy, HostFileError, Kind},
    tree_walk,
};

/// Largest executable hashed (a Node.js binary is about 100 MiB).
pub const MAX_EXECUTABLE_BYTES: u64 = 1024 * 1024 * 1024;
/// Linux keeps this many bytes of a process name (`comm`).
const COMM_CHARS: usize = 15;

/// The executables pinned as trusted for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustedExecutables {
    /// SHA-256 → the names it was pinned under (basenames of its paths and
    /// of links to it, process names seen running it at pin time).
    pub by_hash: BTreeMap<String, BTreeSet<String>>,
    /// Basenames of pinned `#!` scripts (a script runs as its interpreter).
    pub scripts: BTreeSet<String>,
    /// Executables in writable trees at pin time: container path → SHA-256.
    pub writable: BTreeMap<String, String>,
    /// What could not be read at pin time (the pin still holds the rest).
    pub notes: Vec<String>,
}

impl TrustedExecutables {
    /// Whether anything was pinned to identify processes by.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Trusts `sha256` under `name`.
    pub fn add(&mut self, sha256: String, name: &str) {
        self.by_hash
            .entry(sha256)
            .or_default()
            .insert(name.to_owned());
    }
}

fn basename(path: &Path) -> Option<String> {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
}

/// The image layers of a container (overlay2 only), lowest last.
#[must_use]
pub fn image_layers(inspect: &ContainerInspectResponse) -> Vec<PathBuf> {
    inspect
        .graph_driver
        .as_ref()
        .filter(|driver| driver.name == "overlay2")
        .and_then(|driver| driver.data.get("LowerDir"))
        .map(|lower| lower.split(':').map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// Hashes every executable in `layers` into `trusted`, with the names of
/// the links that point at them.
pub fn pin_image(layers: &[PathBuf], trusted: &mut TrustedExecutables) {
    let mut by_path: HashMap<PathBuf, String> = HashMap::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for layer in layers {
        let root = match host_fs::open_dir(layer) {
            Ok(root) => root,
            Err(err) => {
                trusted.notes.push(format!("image layer not read: {err}"));
                continue;
            }
        };
        let mut missed = Vec::new();
        let walked = tree_walk::walk(
            root,
            layer,
            &mut |folder, entry| {
                let path = Path::new("/").join(&entry.relative);
                match entry.kind {
                    Kind::Symlink => {
                        let target = nix::fcntl::readlinkat(
                            folder,
                            entry.relative.file_name().unwrap_or_default(),
                        );
                        if let Ok(target) = target {
                            let target = PathBuf::from(target);
                            let resolved = if target.is_absolute() {
                                target
                            } else {
                                path.parent().unwrap_or(Path::new("/")).join(target)
                            };
                            links.push((path, resolved));
                        }
                    }
                    Kind::Regular => {
                        let Some(name) = entry.relative.file_name() else {
                            return tree_walk::Enter::Yes;
                        };
                        let Ok(mut file) = host_fs::open_regular_at(folder, name, &path) else {
                            return tree_walk::Enter::Yes;
                        };
                        let head = host_fs::magic(&mut file).unwrap_or_default();
                        let Some(by) = ExecutableBy::judge(entry.stat.st_mode, &head) else {
                            return tree_walk::Enter::Yes;
                        };
                        if (by == ExecutableBy::Script || head.starts_with(b"#!"))
                            && let Some(name) = basename(&path)
                        {
                            trusted.scripts.insert(name);
                        }
                        let hashed = host_fs::open_regular_at(folder, name, &path)
                            .and_then(|file| host_fs::hash(file, MAX_EXECUTABLE_BYTES, &path));
                        match hashed {
                            Ok((sha256, _)) => {
                                if let Some(name) = basename(&path) {
                                    trusted.add(sha256.clone(), &name);
                                }
                                by_path.insert(path, sha256);
                            }
                            Err(err) => trusted.notes.push(err.to_string()),
                        }
                    }
                    _ => {}
                }
                tree_walk::Enter::Yes
            },
            &mut |path, why| missed.push(format!("{}: {why:?}", path.display())),
        );
        if !missed.is_empty() {
            trusted.notes.push(format!(
                "image layer {}: {} folder(s) not read, e.g. {}",
                layer.display(),
                missed.len(),
                missed[0]
            ));
        }
        if let Err(err) = walked {
            trusted
                .notes
                .push(format!("image layer not fully read: {err}"));
        }
    }
    // Links may point at links (sh → busybox → …): follow a few hops.
    for (link, target) in &links {
        let mut current = normalize(target);
        for _ in 0..8 {
            if let Some(sha256) = by_path.get(&current) {
                if let Some(name) = basename(link) {
                    trusted.add(sha256.clone(), &name);
                }
                break;
            }
            let Some((_, next)) = links.iter().find(|(from, _)| *from == current) else {
                break;
            };
            current = normalize(next);
        }
    }
}

/// `path` with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

/// An executable a process runs, read through `/proc/<pid>/exe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecutable {
    /// SHA-256.
    pub sha256: String,
}

impl RunningExecutable {
    /// Whether `sha256` is a digest (not the note of one too large to hash).
    #[must_use]
    pub fn is_hashed(&self) -> bool {
        self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// Hashes of executables already read, by (device, inode, size, mtime,
/// ctime — to the nanosecond).
#[derive(Debug, Default)]
pub struct ExeCache {
    known: HashMap<FileVersion, String>,
    /// Bytes this pass may still hash (`None`: no bound).
    budget: Option<u64>,
}

impl ExeCache {
    /// Starts a pass that hashes at most `bytes` of executables not seen
    /// before; beyond, processes are not identified this pass (and say so).
    pub fn begin_pass(&mut self, bytes: u64) {
        self.budget = Some(bytes);
    }
}

/// A file as it is now: (device, inode, size, (mtime, ns), (ctime, ns)).
type FileVersion = (u64, u64, i64, (i64, i64), (i64, i64));

/// Opens what process `pid` runs: its own `/proc/<pid>/exe`, or — when its
/// first thread has exited and left others running — one of its threads'.
/// `None` when nothing runs: the process is gone or a zombie.
fn open_executable(pid: u32) -> Result<Option<OwnedFd>, HostFileError> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    // The one link followed on purpose: the kernel's, to the process's binary.
    let path = PathBuf::from(format!("/proc/{pid}/exe"));
    let first = match open(&path, flags, Mode::empty()) {
        Ok(fd) => return Ok(Some(fd)),
        Err(err) => err,
    };
    let process = PathBuf::from(format!("/proc/{pid}"));
    if let Ok(tasks) = std::fs::read_dir(process.join("task")) {
        for task in tasks.flatten() {
            if let Ok(fd) = open(&task.path().join("exe"), flags, Mode::empty()) {
                return Ok(Some(fd));
            }
        }
    }
    // Gone means the kernel has no such process — not that `/proc` hides
    // it (hidepid, a missing capability): that is an error, said as such.
    let pid_t = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    if nix::sys::signal::kill(pid_t, None) == Err(nix::errno::Errno::ESRCH) {
        return Ok(None);
    }
    // A zombie runs nothing — but a leader that exited shows as one while
    // its threads run: only when every thread is dead does nothing run.
    let dead = |stat: &Path| {
        std::fs::read_to_string(stat).is_ok_and(|stat| {
            // The state follows the name, in parentheses, which may hold anything.
            matches!(
                stat.rsplit(") ")
                    .next()
                    .and_then(|rest| rest.chars().next()),
                Some('Z' | 'X')
            )
        })
    };
    let zombie = dead(&process.join("stat"))
        && std::fs::read_dir(process.join("task"))
            .is_ok_and(|tasks| tasks.flatten().all(|task| dead(&task.path().join("stat"))));
    if zombie {
        return Ok(None);
    }
    Err(HostFileError::Io {
        path: path.display().to_string(),
        message: first.to_string(),
    })
}

/// The executable process `pid` runs — `None` when nothing runs (gone, or a
/// zombie) — or an error when `/proc` does not show it. One larger than
/// [`MAX_EXECUTABLE_BYTES`] is not hashed: its `sha256` then says so, and
/// matches no pinned executable.
pub fn running_executable(
    pid: u32,
    cache: &mut ExeCache,
) -> Result<Option<RunningExecutable>, HostFileError> {
    let path = PathBuf::from(format!("/proc/{pid}/exe"));
    let Some(fd) = open_executable(pid)? else {
        return Ok(None);
    };
    let stat = fstat(&fd).map_err(|err| HostFileError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    })?;
    if Kind::of(&stat) != Kind::Regular {
        return Err(HostFileError::NotRegular {
            path: path.display().to_string(),
            kind: Kind::of(&stat).name(),
        });
    }
    let key = (
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        (stat.st_mtime, stat.st_mtime_nsec),
        (stat.st_ctime, stat.st_ctime_nsec),
    );
    if let Some(sha256) = cache.known.get(&key) {
        return Ok(Some(RunningExecutable {
            sha256: sha256.clone(),
        }));
    }
    let size = u64::try_from(stat.st_size)
        .unwrap_or(u64::MAX)
        .min(MAX_EXECUTABLE_BYTES);
    if let Some(budget) = cache.budget.as_mut() {
        if size > *budget {
            return Err(HostFileError::Io {
                path: path.display().to_string(),
                message: "not hashed this pass: the pass's bound on bytes hashed is spent"
                    .to_owned(),
            });
        }
        *budget -= size;
    }
    let sha256 = match host_fs::hash(std::fs::File::from(fd), MAX_EXECUTABLE_BYTES, &path) {
        Ok((sha256, _)) => sha256,
        Err(HostFileError::TooLarge { limit, .. }) => {
            format!("not hashed: larger than {limit} bytes")
        }
        Err(err) => return Err(err),
    };
    cache.known.insert(key, sha256.clone());
    Ok(Some(RunningExecutable { sha256 }))
}

/// Whether process name `comm` (as the kernel cut it) is `name`.
#[must_use]
pub fn comm_is(comm: &str, name: &str) -> bool {
    comm == name || (comm.chars().count() == COMM_CHARS && name.starts_with(comm))
}

/// What a process turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A pinned executable, under one of its names.
    Trusted,
    /// A pinned executable under a name it was not pinned under.
    Masquerade {
        /// The names it was pinned under.
        pinned_as: Vec<String>,
    },
    /// An executable that was not pinned.
    Foreign,
}

/// Judges a process called `comm` running `exe` against `trusted`.
#[must_use]
pub fn judge(comm: &str, exe: &RunningExecutable, trusted: &TrustedExecutables) -> Verdict {
    let Some(names) = trusted.by_hash.get(&exe.sha256) else {
        return Verdict::Foreign;
    };
    let named = names.iter().any(|name| comm_is(comm, name))
        || trusted.scripts.iter().any(|script| comm_is(comm, script));
    if named {
        Verdict::Trusted
    } else {
        Verdict::Masquerade {
            pinned_as: names.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn image_executables_are_known_by_their_paths_links_and_scripts() {
        let layer = tempfile::tempdir().unwrap();
        let bin = layer.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("busybox"), b"\x7fELF busybox").unwrap();
        std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        symlink("busybox", bin.join("sleep")).unwrap();
        symlink("/bin/sleep", bin.join("nap")).unwrap();
        std::fs::create_dir_all(layer.path().join("app")).unwrap();
        std::fs::write(
            layer.path().join("app/gateway.sh"),
            "#!/bin/sh\nexec sleep 9\n",
        )
        .unwrap();
        std::fs::write(layer.path().join("app/data.txt"), "not executable").unwrap();
        let mut trusted = TrustedExecutables::default();
        pin_image(&[layer.path().to_owned()], &mut trusted);
        assert_eq!(trusted.by_hash.len(), 2, "{trusted:?}");
        let busybox = trusted
            .by_hash
            .values()
            .find(|names| names.contains("busybox"))
            .unwrap();
        assert_eq!(
            busybox.iter().collect::<Vec<_>>(),
            ["busybox", "nap", "sleep"]
        );
        assert!(trusted.scripts.contains("gateway.sh"));
        let sha = trusted
            .by_hash
            .iter()
            .find(|(_, names)| names.contains("busybox"))
            .unwrap()
            .0
            .clone();
        let running = RunningExecutable { sha256: sha };
        assert_eq!(judge("sleep", &running, &trusted), Verdict::Trusted);
        assert_eq!(judge("gateway.sh", &running, &trusted), Verdict::Trusted);
        assert!(matches!(
            judge("node", &running, &trusted),
            Verdict::Masquerade { .. }
        ));
        let stranger = RunningExecutable {
            sha256: "00".repeat(32),
        };
        assert_eq!(judge("sleep", &stranger, &trusted), Verdict::Foreign);
    }

    #[test]
    fn this_process_is_identified_through_proc() {
        let mut cache = ExeCache::default();
        let me = running_executable(std::process::id(), &mut cache)
            .unwrap()
            .unwrap();
        assert_eq!(me.sha256.len(), 64);
        assert_eq!(
            running_executable(std::process::id(), &mut cache).unwrap(),
            Some(me)
        );
        // A zombie runs nothing, and neither does a process that is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        while !std::fs::read_to_string(&stat).unwrap().contains(") Z") {
            std::thread::yield_now();
        }
        assert_eq!(running_executable(child.id(), &mut cache).unwrap(), None);
        child.wait().unwrap();
        assert_eq!(running_executable(child.id(), &mut cache).unwrap(), None);
        assert!(comm_is("very-long-proce", "very-long-process-name"));
        assert!(!comm_is("node", "nodejs"));
    }
}
