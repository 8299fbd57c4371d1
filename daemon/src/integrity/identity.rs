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
    path::{Path, PathBuf},
};

use bollard::models::ContainerInspectResponse;
use serde::{Deserialize, Serialize};

#[cfg(not(unix))]
use super::host_fs::HostFileError;

#[cfg(unix)]
mod host;
#[cfg(unix)]
pub use host::{pin_image, running_executable};

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

#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
fn basename(path: &Path) -> Option<String> {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
}

/// The image layers of a container (overlay2 only), lowest last.
#[must_use]
pub fn image_layers(inspect: &ContainerInspectResponse) -> Vec<PathBuf> {
    // Off Unix the engine keeps them in its VM, out of the host's reach.
    if !cfg!(unix) {
        return Vec::new();
    }
    inspect
        .graph_driver
        .as_ref()
        .filter(|driver| driver.name == "overlay2")
        .and_then(|driver| driver.data.get("LowerDir"))
        .map(|lower| lower.split(':').map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// `path` with `.` and `..` resolved lexically.
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
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
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
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

/// Off Unix no image layer is named ([`image_layers`]): nothing to pin.
#[cfg(not(unix))]
pub fn pin_image(layers: &[PathBuf], trusted: &mut TrustedExecutables) {
    if !layers.is_empty() {
        trusted
            .notes
            .push("image layers are read on Unix only".to_owned());
    }
}

/// Off Linux there is no `/proc`: processes are judged by name, and the
/// finding says why.
#[cfg(not(unix))]
pub fn running_executable(
    pid: u32,
    _cache: &mut ExeCache,
) -> Result<Option<RunningExecutable>, HostFileError> {
    Err(HostFileError::Io {
        path: format!("process {pid}"),
        message: "the engine runs it in its VM: no /proc to read here".to_owned(),
    })
}

#[cfg(test)]
#[cfg(unix)]
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

    /// A process whose first thread exited while another runs shows as a
    /// zombie leader: what it runs is read through that other thread.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_leader_that_exited_is_read_through_its_threads() {
        let mut process = std::process::Command::new("python3")
            .args([
                "-c",
                "import ctypes, threading, time\n\
                 threading.Thread(target=time.sleep, args=(30,)).start()\n\
                 ctypes.CDLL(None).pthread_exit(None)\n",
            ])
            .spawn()
            .expect("python3 runs");
        let stat = format!("/proc/{}/stat", process.id());
        while !std::fs::read_to_string(&stat).unwrap().contains(") Z") {
            std::thread::yield_now();
        }
        let mut cache = ExeCache::default();
        let running = running_executable(process.id(), &mut cache);
        let _ = process.kill();
        let _ = process.wait();
        let running = running.unwrap().expect("its other thread still runs");
        let python = std::process::Command::new("python3")
            .args([
                "-c",
                "import os, sys; print(os.path.realpath(sys.executable))",
            ])
            .output()
            .unwrap();
        let python = String::from_utf8(python.stdout).unwrap();
        let bytes = std::fs::read(python.trim()).unwrap();
        let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        assert_eq!(running.sha256, expected, "python3's own binary");
    }

    /// A process running an executable over [`MAX_EXECUTABLE_BYTES`] (a
    /// copy of `sleep` made sparse past the bound: the loader reads only
    /// its start) is not hashed, and judged foreign even under the name of
    /// a pinned executable with the same first bytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_running_executable_too_large_to_hash_is_foreign() {
        let folder = tempfile::tempdir().unwrap();
        let sleep = std::fs::read("/bin/sleep").unwrap();
        let large = folder.path().join("sleep");
        std::fs::write(&large, &sleep).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&large)
            .unwrap()
            .set_len(MAX_EXECUTABLE_BYTES + 1)
            .unwrap();
        std::fs::set_permissions(&large, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut process = std::process::Command::new(&large)
            .arg("30")
            .spawn()
            .expect("the large copy runs");
        let mut cache = ExeCache::default();
        let running = running_executable(process.id(), &mut cache);
        let _ = process.kill();
        let _ = process.wait();
        let running = running.unwrap().expect("it runs");
        assert!(!running.is_hashed(), "{running:?}");
        assert!(running.sha256.starts_with("not hashed: larger than"));
        let mut trusted = TrustedExecutables::default();
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &sleep));
        trusted
            .by_hash
            .insert(sha, std::iter::once("sleep".to_owned()).collect());
        assert_eq!(judge("sleep", &running, &trusted), Verdict::Foreign);
    }
}
