//! Creating the listening Unix socket safely, or taking the one the service
//! manager created (see [`super::activation`]).
//!
//! Invariant: the daemon listens only on a socket it created itself, in a
//! folder others cannot write to, with mode 0660 (never wider, not even for a
//! moment: the process umask keeps it private until the mode is set), or on
//! the one socket activation passed for `socket.path`; a live daemon's socket
//! is never removed, only a stale one nobody answers on, and an inherited
//! socket's file is left to the service manager that made it.

use std::{
    fs::{self, DirBuilder},
    io::ErrorKind,
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::net::UnixListener;

use super::error::{SocketError, SocketOrigin, io_error};
use crate::config::SocketConfig;

const SOCKET_MODE: u32 = 0o660;
const NEW_PARENT_MODE: u32 = 0o750;

/// The listening socket's file: removed when dropped if the daemon bound
/// it, left alone if the service manager made it.
#[derive(Debug)]
pub struct BoundSocket {
    path: PathBuf,
    origin: SocketOrigin,
    /// (device, inode) of the file it bound: only that file is removed.
    file: Option<(u64, u64)>,
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

impl BoundSocket {
    /// The file of a socket the service manager made (left in place).
    pub(super) fn inherited(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            origin: SocketOrigin::Inherited,
            file: None,
        }
    }

    /// Where the socket came from.
    #[must_use]
    pub fn origin(&self) -> SocketOrigin {
        self.origin
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if self.origin == SocketOrigin::Inherited {
            return;
        }
        // Someone else's file at the path now (a second daemon's, after ours
        // was removed by hand) stays.
        if file_identity(&self.path) != self.file {
            return;
        }
        if let Err(err) = fs::remove_file(&self.path)
            && err.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %err, "could not remove socket");
        }
    }
}

/// Checks the folder, clears a stale socket, binds, and sets mode and group.
pub fn bind_socket(config: &SocketConfig) -> Result<(UnixListener, BoundSocket), SocketError> {
    let path = config.path.as_path();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_safe_parent(parent)?;
    let group = config.group.as_deref().map(resolve_group).transpose()?;
    clear_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(io_error("cannot bind", path))?;
    let guard = BoundSocket {
        path: path.to_owned(),
        origin: SocketOrigin::Bound,
        file: file_identity(path),
    };
    // Under the shipped unit the daemon's own group is socket.group, so the
    // socket is born in it and no chown(2) (filtered there) is needed.
    let born_in = fs::metadata(path)
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .map_err(io_error("cannot inspect", path))?;
    if let Some(gid) = group.filter(|gid| gid.as_raw() != born_in) {
        nix::unistd::chown(path, None, Some(gid))
            .map_err(|errno| io_error("cannot change group of", path)(errno.into()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(io_error("cannot set mode of", path))?;
    Ok((listener, guard))
}

fn ensure_safe_parent(parent: &Path) -> Result<(), SocketError> {
    if !parent.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(NEW_PARENT_MODE)
            .create(parent)
            .map_err(io_error("cannot create", parent))?;
    }
    check_parent(parent)
}

/// Only root or occcd's own user may own the socket's folder, and nobody
/// else may write to it: whoever can, could swap the socket for their own
/// and collect logins.
pub(super) fn check_parent(parent: &Path) -> Result<(), SocketError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(parent).map_err(io_error("cannot inspect", parent))?;
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(SocketError::UnsafeParent {
            path: parent.to_owned(),
            mode,
        });
    }
    let owner = metadata.uid();
    if owner != 0 && owner != nix::unistd::geteuid().as_raw() {
        return Err(SocketError::ForeignParent {
            path: parent.to_owned(),
            owner,
        });
    }
    Ok(())
}

pub(super) fn resolve_group(name: &str) -> Result<nix::unistd::Gid, SocketError> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(SocketError::UnknownGroup(name.to_owned())),
        Err(errno) => Err(io_error("cannot look up group", Path::new(name))(
            errno.into(),
        )),
    }
}

fn clear_stale_socket(path: &Path) -> Result<(), SocketError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error("cannot inspect", path)(err)),
    };
    if !metadata.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::AlreadyServing(path.to_owned())),
        Err(err) if err.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket left by a previous daemon");
            fs::remove_file(path).map_err(io_error("cannot remove stale socket", path))
        }
        Err(err) => Err(io_error("cannot probe existing socket", path)(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: PathBuf) -> SocketConfig {
        SocketConfig {
            path,
            ..SocketConfig::default()
        }
    }

    #[tokio::test]
    async fn binds_with_mode_0660_and_removes_file_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (listener, guard) = bind_socket(&config(path.clone())).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        drop(listener);
        drop(guard);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn live_socket_is_not_taken_over_and_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (listener, guard) = bind_socket(&config(path.clone())).unwrap();
        let err = bind_socket(&config(path.clone())).unwrap_err();
        assert!(matches!(err, SocketError::AlreadyServing(_)), "{err}");
        drop(listener);
        std::mem::forget(guard); // leaves the file behind, as a killed daemon would
        assert!(path.exists());
        bind_socket(&config(path)).unwrap();
    }

    #[tokio::test]
    async fn world_writable_parent_and_regular_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = bind_socket(&config(dir.path().join("s.sock"))).unwrap_err();
        assert!(matches!(err, SocketError::UnsafeParent { .. }), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = bind_socket(&config(dir.path().join("file"))).unwrap_err();
        assert!(matches!(err, SocketError::NotASocket(_)), "{err}");
    }
}
