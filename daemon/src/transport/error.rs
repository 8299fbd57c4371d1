//! Why the listener could not be set up, and where it came from — the same
//! on every platform.
//!
//! Invariant: every message names the path (or pipe) and what to do.

#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon answers on the socket.
    #[error("another occcd is already serving on {0}; stop it first (systemctl stop occcd)")]
    AlreadyServing(PathBuf),
    /// The socket's folder is writable by its group or others, who could
    /// replace the socket.
    #[error(
        "folder {path} is writable by its group or others (mode {mode:04o}); run: chmod go-w {path}"
    )]
    UnsafeParent {
        /// The folder.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The socket's folder belongs to someone who could replace the socket.
    #[error(
        "folder {path} belongs to uid {owner}, neither root nor occcd's user; run: chown root {path}"
    )]
    ForeignParent {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// Something other than a socket is in the way.
    #[error("{0} exists and is not a socket; move it away or choose another socket.path")]
    NotASocket(PathBuf),
    /// The configured group does not exist.
    #[error("socket group {0:?} does not exist; create it (groupadd {0}) or change socket.group")]
    UnknownGroup(String),
    /// Another process created the pipe's name before occcd (Windows).
    #[error(
        "another process already owns the pipe {0}; stop it (another occcd?) or choose another socket.path"
    )]
    PipeInUse(PathBuf),
    /// The service manager passed descriptors occcd cannot use.
    #[error("socket activation: {0}")]
    Activation(String),
    /// A system call failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[cfg(unix)]
pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> SocketError + use<> {
    let path = path.to_owned();
    move |source| SocketError::Io {
        action,
        path,
        source,
    }
}

/// Where the listening socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOrigin {
    /// The daemon bound it.
    Bound,
    /// The service manager passed it (socket activation).
    Inherited,
}

impl std::fmt::Display for SocketOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bound => "bound by occcd",
            Self::Inherited => "passed by the service manager",
        })
    }
}
