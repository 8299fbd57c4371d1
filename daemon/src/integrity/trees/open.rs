//! Opening a tree's top folder from the host (Unix): see [`super`]'s
//! invariant.

use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::{
    fcntl::{OFlag, open},
    sys::stat::{Mode, fstat},
};

use super::Tree;
use crate::integrity::host_fs::{self, HostFileError};

impl Tree {
    /// Opens the tree's top folder (for a file, its folder). A tmpfs must
    /// be a mount of its own where the container has it: a folder put in
    /// its place (the real one moved away) is refused, never walked as if
    /// it were the tmpfs.
    pub(in crate::integrity) fn open(&self) -> Result<(OwnedFd, PathBuf), OpenFailure> {
        let plain = OpenFailure::Unreadable;
        match self {
            Self::Layer { upper, .. } => {
                Ok((host_fs::open_dir(upper).map_err(plain)?, upper.clone()))
            }
            Self::Mount { source, .. } => {
                Ok((host_fs::open_dir(source).map_err(plain)?, source.clone()))
            }
            // Its folder: the scan looks at the one file in it.
            Self::File { source, .. } => {
                let folder = source.parent().unwrap_or(Path::new("/"));
                Ok((host_fs::open_dir(folder).map_err(plain)?, source.clone()))
            }
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
                .map_err(|err| plain(io_error(&root_path, err)))?;
                // Below the container's root, what is not as it should be
                // was made so by the container. A mount point is on another
                // filesystem than the folder holding it; a folder put in its
                // place (the mount moved away with its parent) is not.
                let below = Path::new(mount.trim_start_matches('/'));
                let holder = below.parent().unwrap_or(Path::new(""));
                let holding =
                    host_fs::open_dir_below(root, holder, &shown).map_err(OpenFailure::Tampered)?;
                let holder_device = fstat(&holding)
                    .map_err(|err| OpenFailure::Tampered(io_error(&shown, err)))?
                    .st_dev;
                let name = below.file_name().map(Path::new).unwrap_or(Path::new(""));
                let opened = host_fs::open_dir_below(holding, name, &shown)
                    .map_err(OpenFailure::Tampered)?;
                let device = fstat(&opened)
                    .map_err(|err| OpenFailure::Tampered(io_error(&shown, err)))?
                    .st_dev;
                if device == holder_device {
                    return Err(OpenFailure::Tampered(io_error(
                        &shown,
                        "no longer a mount (moved away, a folder in its place)",
                    )));
                }
                Ok((opened, shown))
            }
        }
    }
}

/// Why a tree could not be opened.
#[derive(Debug)]
pub(in crate::integrity) enum OpenFailure {
    /// Not readable (gone with its process, missing on the host, refused).
    Unreadable(HostFileError),
    /// Not what the container was given: a tmpfs moved or replaced.
    Tampered(HostFileError),
}

fn io_error(path: &Path, err: impl std::fmt::Display) -> HostFileError {
    HostFileError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}
