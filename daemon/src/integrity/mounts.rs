//! Which of a container's mounts reach the host's control: the engine's
//! socket (by file or by any folder holding it), `/run`, `/var/run`,
//! `/proc`, `/sys`, `/` and occcd's own state — and the host paths CIS 5.5
//! calls sensitive.
//!
//! Invariant: a mount reaches control when its host path, as written or
//! with links resolved, is one of the guarded paths, holds one (an
//! ancestor), or for `/proc`, `/sys`, `/run`, `/var/run` and occcd's state
//! lies inside one; the start policy refuses every such mount and the
//! sweep reports each as a finding.

use std::path::{Component, Path, PathBuf};

use bollard::models::ContainerInspectResponse;

/// Host paths whose mounting breaks isolation (CIS 5.5), exactly.
const SENSITIVE_HOST_PATHS: &[&str] = &["/boot", "/dev", "/etc", "/lib", "/usr", "/var/lib/docker"];

/// Host folders that hold the engine's sockets or the kernel's control
/// files: mounting them, anything inside them or any folder holding them
/// reaches the host's control.
const CONTROL_FOLDERS: &[&str] = &["/run", "/var/run", "/proc", "/sys"];

/// File names of container engines' control sockets (CIS 5.31).
const ENGINE_SOCKET_NAMES: &[&str] =
    &["docker.sock", "containerd.sock", "podman.sock", "crio.sock"];

/// What no container may reach through a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuardedPaths {
    /// The engine socket occcd uses.
    pub engine_socket: PathBuf,
    /// occcd's own state: database folder, key file, socket.
    pub daemon_state: Vec<PathBuf>,
}

/// Why a mount reaches the host's control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMount {
    /// The host path mounted.
    pub source: String,
    /// What it reaches, in words.
    pub reaches: String,
}

/// `path` without `.`, `..` (lexically) or a trailing `/`.
fn lexical(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

/// `path` as written and with the host's links resolved (when it exists).
fn forms(path: &Path) -> Vec<PathBuf> {
    let mut forms = vec![lexical(path)];
    if let Ok(resolved) = std::fs::canonicalize(path)
        && !forms.contains(&resolved)
    {
        forms.push(resolved);
    }
    forms
}

/// Whether `inner` is `outer` or lies inside it.
fn within(inner: &Path, outer: &Path) -> bool {
    inner.starts_with(outer)
}

/// What mounting `source` reaches, if it reaches the host's control.
#[must_use]
pub fn reaches_control(source: &str, guarded: &GuardedPaths) -> Option<String> {
    let mounted = forms(Path::new(source));
    let is_socket_file = ENGINE_SOCKET_NAMES
        .iter()
        .any(|name| source.trim_end_matches('/').ends_with(name));
    if is_socket_file {
        return Some("a container engine's socket: root on the host".to_owned());
    }
    let socket = forms(&guarded.engine_socket);
    if mounted.iter().any(|m| socket.iter().any(|s| within(s, m))) {
        return Some(format!(
            "a folder holding the engine socket {}: root on the host",
            guarded.engine_socket.display()
        ));
    }
    for folder in CONTROL_FOLDERS {
        let folder_forms = forms(Path::new(folder));
        if mounted
            .iter()
            .any(|m| folder_forms.iter().any(|f| within(f, m) || within(m, f)))
        {
            return Some(format!(
                "{folder} (engine sockets, kernel and process control)"
            ));
        }
    }
    for state in &guarded.daemon_state {
        let state_forms = forms(state);
        if mounted
            .iter()
            .any(|m| state_forms.iter().any(|s| within(s, m) || within(m, s)))
        {
            return Some(format!("occcd's own state ({})", state.display()));
        }
    }
    None
}

/// Bind-mount sources of the container.
#[must_use]
pub fn sources(inspect: &ContainerInspectResponse) -> Vec<String> {
    inspect
        .mounts
        .iter()
        .flatten()
        .filter_map(|mount| mount.source.clone())
        .collect()
}

/// The container's mounts that reach the host's control.
#[must_use]
pub fn control_mounts(
    inspect: &ContainerInspectResponse,
    guarded: &GuardedPaths,
) -> Vec<ControlMount> {
    sources(inspect)
        .into_iter()
        .filter_map(|source| {
            reaches_control(&source, guarded).map(|reaches| ControlMount { source, reaches })
        })
        .collect()
}

/// The container's mounts of CIS 5.5's other sensitive host paths.
#[must_use]
pub fn sensitive_mounts(inspect: &ContainerInspectResponse) -> Vec<String> {
    sources(inspect)
        .into_iter()
        .filter(|source| {
            forms(Path::new(source)).iter().any(|form| {
                SENSITIVE_HOST_PATHS
                    .iter()
                    .any(|sensitive| form == Path::new(sensitive))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> GuardedPaths {
        GuardedPaths {
            engine_socket: PathBuf::from("/srv/engine/docker.sock"),
            daemon_state: vec![
                PathBuf::from("/var/lib/occcd"),
                PathBuf::from("/run/occcd/occcd.sock"),
            ],
        }
    }

    #[test]
    fn sockets_and_every_folder_holding_them_reach_control() {
        for source in [
            "/var/run/docker.sock",
            "/run/containerd/containerd.sock",
            "/run",
            "/run/",
            "/var/run",
            "/var",
            "/",
            "/proc",
            "/proc/1/root",
            "/sys",
            "/sys/fs/cgroup",
            "/srv/engine",
            "/srv",
            "/srv/engine/../engine",
            "/var/lib/occcd",
            "/var/lib/occcd/master.key",
            "/var/lib",
        ] {
            assert!(
                reaches_control(source, &guarded()).is_some(),
                "{source} must be refused"
            );
        }
    }

    #[test]
    fn ordinary_folders_do_not() {
        for source in [
            "/home/node/.openclaw",
            "/srv/data",
            "/srv/engine-data",
            "/opt/openclaw/workspace",
            "/var/lib/openclaw",
            "/runner",
            "/proceeds",
        ] {
            assert_eq!(reaches_control(source, &guarded()), None, "{source}");
        }
    }

    #[test]
    fn links_are_resolved_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("innocent");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        assert!(reaches_control(link.to_str().unwrap(), &guarded()).is_some());
    }

    #[test]
    fn cis_sensitive_paths_are_exact() {
        let inspect = ContainerInspectResponse {
            mounts: Some(
                ["/etc", "/etc/../usr/", "/etcetera", "/home"]
                    .into_iter()
                    .map(|source| bollard::models::MountPoint {
                        source: Some(source.to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        assert_eq!(sensitive_mounts(&inspect), ["/etc", "/etc/../usr/"]);
    }
}
