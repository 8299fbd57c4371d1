//! The kernel's word on whether a container is frozen, for when the engine
//! has lost track of its own pause: dockerd killed after its runtime froze
//! the container but before it wrote the state down comes back saying
//! "running" and refuses to pause it ("cannot pause a paused container").
//!
//! Invariant: [`cgroup_frozen`] says frozen only when the container's
//! first process sits in the container's own cgroup — the last component of
//! its path is the container's full id (`<id>`, or `…-<id>.scope` under
//! systemd), not a cgroup the container made below it — and the kernel's
//! freezer for that cgroup reads frozen (cgroup v1 `freezer.state` FROZEN,
//! or v2 `cgroup.events` "frozen 1", which covers every cgroup below). A
//! path it cannot read or does not trust (outside this cgroup namespace,
//! another id, nested) is "not known to be frozen", never frozen.

use std::path::{Component, Path, PathBuf};

/// Where the cgroup file systems are mounted on the host.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the kernel has frozen the cgroup of container `id` whose first
/// process is `pid` (a host pid, as the engine reports it). Reads two small
/// kernel files.
#[must_use]
pub fn cgroup_frozen(pid: i64, id: &str) -> bool {
    if pid <= 0 || id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Ok(membership) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let unified_only = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    let Some((file, frozen_when)) = freezer_file(&membership, unified_only, id) else {
        return false;
    };
    std::fs::read_to_string(file).is_ok_and(|state| frozen_when(&state))
}

/// A freezer state reader: true when the file's text says frozen.
type Reads = fn(&str) -> bool;

/// The freezer file for a process in `membership` (its `/proc/<pid>/cgroup`)
/// and how to read it: the v1 freezer hierarchy when the process is in one,
/// else the unified hierarchy when it is the only one mounted.
fn freezer_file(membership: &str, unified_only: bool, id: &str) -> Option<(PathBuf, Reads)> {
    let mut unified = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "freezer") {
            if !names_container(path, id) {
                return None;
            }
            let file = under(&Path::new(CGROUP_ROOT).join("freezer"), path)?.join("freezer.state");
            return Some((file, |state| state.trim() == "FROZEN"));
        }
        if hierarchy == "0" && controllers.is_empty() {
            unified = Some(path);
        }
    }
    let path = unified.filter(|path| unified_only && names_container(path, id))?;
    let file = under(Path::new(CGROUP_ROOT), path)?;
    Some((file.join("cgroup.events"), |events| {
        events.lines().any(|line| line.trim() == "frozen 1")
    }))
}

/// Whether the cgroup `path` is container `id`'s own: its last component
/// is the id, or a systemd scope ending in `-<id>.scope` (the link cut
/// judges a process the same way).
pub(crate) fn names_container(path: &str, id: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    last == id
        || last
            .strip_suffix(".scope")
            .and_then(|scope| scope.strip_suffix(id))
            .is_some_and(|prefix| prefix.ends_with('-'))
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

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_v1_freezer_line_names_freezer_state() {
        let membership = format!("9:name=systemd:/docker/{ID}\n6:freezer:/docker/{ID}\n0::/\n");
        let (file, reads) = freezer_file(&membership, false, ID).unwrap();
        assert_eq!(
            file,
            Path::new(&format!("/sys/fs/cgroup/freezer/docker/{ID}/freezer.state"))
        );
        assert!(reads("FROZEN\n"));
        assert!(!reads("THAWED\n"));
        assert!(!reads("FREEZING\n"));
    }

    #[test]
    fn the_unified_hierarchy_is_read_only_when_it_is_the_only_one() {
        let membership = format!("0::/system.slice/docker-{ID}.scope\n");
        let (file, reads) = freezer_file(&membership, true, ID).unwrap();
        assert_eq!(
            file,
            Path::new(&format!(
                "/sys/fs/cgroup/system.slice/docker-{ID}.scope/cgroup.events"
            ))
        );
        assert!(reads("populated 1\nfrozen 1\n"));
        assert!(!reads("populated 1\nfrozen 0\n"));
        assert!(freezer_file(&membership, false, ID).is_none());
    }

    #[test]
    fn a_cgroup_the_container_made_below_its_own_or_another_id_is_not_trusted() {
        let nested = format!("6:freezer:/docker/{ID}/frozen-decoy\n");
        assert!(freezer_file(&nested, false, ID).is_none());
        let nested = format!("0::/system.slice/docker-{ID}.scope/init\n");
        assert!(freezer_file(&nested, true, ID).is_none());
        let other = format!("6:freezer:/docker/{}\n", "b".repeat(64));
        assert!(freezer_file(&other, false, ID).is_none());
        let suffix_only = format!("0::/x-{ID}.scopeish\n");
        assert!(freezer_file(&suffix_only, true, ID).is_none());
        assert!(!cgroup_frozen(1, "not-hex"));
    }

    #[test]
    fn a_path_outside_this_namespace_or_garbage_is_not_known_frozen() {
        let outside = format!("6:freezer:/../../docker/{ID}\n");
        assert!(freezer_file(&outside, false, ID).is_none());
        assert!(freezer_file(&format!("0::/../{ID}\n"), true, ID).is_none());
        assert!(freezer_file(&format!("6:freezer:{ID}\n"), false, ID).is_none());
        assert!(freezer_file("garbage", true, ID).is_none());
        assert!(!cgroup_frozen(0, ID));
        assert!(!cgroup_frozen(-5, ID));
        // This test's own process is not in a container's cgroup.
        assert!(!cgroup_frozen(i64::from(std::process::id()), ID));
    }
}
