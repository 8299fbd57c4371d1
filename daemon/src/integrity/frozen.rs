//! The kernel's word on whether a container is frozen, for when the engine
//! has lost track of its own pause: dockerd killed after its runtime froze
//! the container but before it wrote the state down comes back saying
//! "running" and refuses to pause it ("cannot pause a paused container").
//!
//! Invariant: [`cgroup_frozen`] says frozen only when the kernel's freezer
//! for the cgroup of the container's first process reads frozen (cgroup v1
//! `freezer.state` FROZEN, or cgroup v2 `cgroup.events` "frozen 1"); a path
//! it cannot read or does not trust (outside this cgroup namespace) is "not
//! known to be frozen", never frozen.

use std::path::{Component, Path, PathBuf};

/// Where the cgroup file systems are mounted on the host.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the kernel has frozen the cgroup of process `pid` (a host pid,
/// as the engine reports it). Reads two small kernel files.
#[must_use]
pub fn cgroup_frozen(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(membership) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let unified_only = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    let Some((file, frozen_when)) = freezer_file(&membership, unified_only) else {
        return false;
    };
    std::fs::read_to_string(file).is_ok_and(|state| frozen_when(&state))
}

/// A freezer state reader: true when the file's text says frozen.
type Reads = fn(&str) -> bool;

/// The freezer file for a process in `membership` (its `/proc/<pid>/cgroup`)
/// and how to read it: the v1 freezer hierarchy when the process is in one,
/// else the unified hierarchy when it is the only one mounted.
fn freezer_file(membership: &str, unified_only: bool) -> Option<(PathBuf, Reads)> {
    let mut unified = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "freezer") {
            let file = under(&Path::new(CGROUP_ROOT).join("freezer"), path)?.join("freezer.state");
            return Some((file, |state| state.trim() == "FROZEN"));
        }
        if id == "0" && controllers.is_empty() {
            unified = Some(path);
        }
    }
    let file = under(Path::new(CGROUP_ROOT), unified.filter(|_| unified_only)?)?;
    Some((file.join("cgroup.events"), |events| {
        events.lines().any(|line| line.trim() == "frozen 1")
    }))
}

/// `root` joined with the absolute cgroup `path`, if it stays below `root`
/// (a process outside this cgroup namespace shows as `/..`).
fn under(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path).strip_prefix("/").ok()?;
    relative
        .components()
        .all(|part| matches!(part, Component::Normal(_)))
        .then(|| root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_freezer_line_names_freezer_state() {
        let membership = "9:name=systemd:/docker/abc\n6:freezer:/docker/abc\n0::/\n";
        let (file, reads) = freezer_file(membership, false).unwrap();
        assert_eq!(
            file,
            Path::new("/sys/fs/cgroup/freezer/docker/abc/freezer.state")
        );
        assert!(reads("FROZEN\n"));
        assert!(!reads("THAWED\n"));
        assert!(!reads("FREEZING\n"));
    }

    #[test]
    fn the_unified_hierarchy_is_read_only_when_it_is_the_only_one() {
        let membership = "0::/system.slice/docker-abc.scope\n";
        let (file, reads) = freezer_file(membership, true).unwrap();
        assert_eq!(
            file,
            Path::new("/sys/fs/cgroup/system.slice/docker-abc.scope/cgroup.events")
        );
        assert!(reads("populated 1\nfrozen 1\n"));
        assert!(!reads("populated 1\nfrozen 0\n"));
        assert!(freezer_file(membership, false).is_none());
    }

    #[test]
    fn a_path_outside_this_namespace_or_garbage_is_not_known_frozen() {
        assert!(freezer_file("6:freezer:/../../docker/abc\n", false).is_none());
        assert!(freezer_file("0::/../x\n", true).is_none());
        assert!(freezer_file("6:freezer:docker\n", false).is_none());
        assert!(freezer_file("garbage", true).is_none());
        assert!(!cgroup_frozen(0));
        assert!(!cgroup_frozen(-5));
        // This test's own process is not frozen.
        assert!(!cgroup_frozen(i64::from(std::process::id())));
    }
}
