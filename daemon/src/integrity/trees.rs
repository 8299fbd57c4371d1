//! The trees a container can write to, seen from the host: its writable
//! layer (overlay2's upper folder), its tmpfs mounts (through its root in
//! `/proc/<pid>/root`), its writable bind mounts, volumes and file mounts,
//! and the engine's own `/dev`, `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`.
//!
//! Invariant: every place the inspect document says the container can
//! write is a tree; a tree is opened following no link below its start, and
//! a tmpfs is opened only where it is still mounted — a folder put in its
//! place is refused as tampering, never walked as if it were the tmpfs.

use std::path::PathBuf;

use bollard::models::ContainerInspectResponse;

#[cfg(unix)]
mod open;
#[cfg(unix)]
pub(super) use open::OpenFailure;

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
    /// A single writable file bind-mounted at `mount` (the engine's
    /// `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, or a file mount).
    File {
        /// Host path.
        source: PathBuf,
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
            Self::Tmpfs { mount, .. } | Self::Mount { mount, .. } | Self::File { mount, .. } => {
                mount
            }
        }
    }
}

/// The writable trees of a container, from its inspect document. Off Unix
/// the writable layer is not named (its changes are read through the engine
/// API); the other trees are, and a scan that cannot read them there says
/// so ([`super::writable::scan`]) — never a silent pass.
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
        .filter(|driver| cfg!(unix) && driver.name == "overlay2")
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
    // The engine mounts a writable tmpfs at /dev (without noexec) and at
    // /dev/shm, and binds /etc/hosts, /etc/hostname and /etc/resolv.conf
    // from its own folder: all places the container can write.
    let mut tmpfs: Vec<String> = vec!["/dev".to_owned(), "/dev/shm".to_owned()];
    for (source, mount) in [
        (&inspect.hosts_path, "/etc/hosts"),
        (&inspect.hostname_path, "/etc/hostname"),
        (&inspect.resolv_conf_path, "/etc/resolv.conf"),
    ] {
        if let Some(source) = source.as_deref().filter(|source| !source.is_empty()) {
            trees.push(Tree::File {
                source: PathBuf::from(source),
                mount: mount.to_owned(),
            });
        }
    }
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
                    // A file mount is told from a folder when scanned.
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
