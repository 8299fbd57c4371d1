//! Reading executables from the host (Unix): the image's layers at
//! PinBaseline, and what each process runs through `/proc/<pid>/exe`. See
//! [`super`]'s invariant.

use std::{
    collections::HashMap,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::{
    fcntl::{OFlag, open},
    sys::stat::{Mode, fstat},
};

use super::{
    ExeCache, MAX_EXECUTABLE_BYTES, RunningExecutable, TrustedExecutables, basename, normalize,
};
use crate::integrity::{
    host_fs::{self, ExecutableBy, HostFileError, Kind},
    tree_walk,
};

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
