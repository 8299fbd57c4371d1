//! Connecting to occcd over its Unix socket without trusting the socket.
//!
//! Invariant: before a single byte is sent, the socket file is a socket owned
//! by the expected uid, its folder is owned by that uid or root and written by
//! its owner only, every folder above is owned by that uid or root and not
//! writable by everyone (unless sticky, like `/tmp`), *and*
//! the process that accepted the connection runs as that uid (kernel
//! `SO_PEERCRED`), so a spoofed daemon cannot collect credentials. The
//! TypeScript SDK applies the same file and folder rules.

use std::{
    io,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::ClientError;

/// Where the packaged daemon listens.
#[cfg(not(target_os = "macos"))]
pub const SYSTEM_SOCKET: &str = "/run/occcd/occcd.sock";
/// Where the packaged daemon listens (macOS has `/var/run`, not `/run`).
#[cfg(target_os = "macos")]
pub const SYSTEM_SOCKET: &str = "/var/run/occcd/occcd.sock";

/// How to reach the daemon and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The daemon's socket.
    pub socket_path: PathBuf,
    /// uid that must own the socket and run the daemon: 0 in system mode.
    pub expected_owner_uid: u32,
}

impl ConnectOptions {
    /// The system daemon: `/run/occcd/occcd.sock`, owned by root.
    #[must_use]
    pub fn system() -> Self {
        Self {
            socket_path: PathBuf::from(SYSTEM_SOCKET),
            expected_owner_uid: 0,
        }
    }

    /// A dev-mode daemon in `dir`, run by the current user.
    #[must_use]
    pub fn dev(dir: &Path) -> Self {
        Self {
            socket_path: dir.join("occcd.sock"),
            expected_owner_uid: nix::unistd::geteuid().as_raw(),
        }
    }
}

/// Checks the socket file, then opens a channel whose every connection is
/// checked against the peer's kernel credentials.
pub async fn open_channel(options: &ConnectOptions) -> Result<Channel, ClientError> {
    check_socket_file(options)?;
    let socket_path = options.socket_path.clone();
    let expected_uid = options.expected_owner_uid;
    // The URI is a placeholder: tonic needs one, the connector ignores it.
    // "localhost" is what tonic's HTTP/2 layer accepts as :authority.
    let endpoint = Endpoint::from_static("http://localhost");
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket_path = socket_path.clone();
            async move {
                connect_checked(&socket_path, expected_uid)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .map_err(|err| ClientError::Connect {
            socket: options.socket_path.clone(),
            message: source_chain(&err),
        })?;
    Ok(channel)
}

fn check_socket_file(options: &ConnectOptions) -> Result<(), ClientError> {
    let path = &options.socket_path;
    let metadata = std::fs::symlink_metadata(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => ClientError::NoDaemon(path.clone()),
        _ => ClientError::Connect {
            socket: path.clone(),
            message: err.to_string(),
        },
    })?;
    if !metadata.file_type().is_socket() {
        return Err(ClientError::NotASocket(path.clone()));
    }
    if metadata.uid() != options.expected_owner_uid {
        return Err(ClientError::UntrustedSocket {
            socket: path.clone(),
            owner: metadata.uid(),
            expected: options.expected_owner_uid,
        });
    }
    // A relative path's folders above the working directory count too.
    let absolute = std::path::absolute(path).map_err(|err| ClientError::Connect {
        socket: path.clone(),
        message: format!("cannot resolve the socket's path: {err}"),
    })?;
    let mut holds_socket = true;
    for folder in absolute.ancestors().skip(1) {
        if folder.as_os_str().is_empty() {
            break;
        }
        check_folder(folder, options.expected_owner_uid, holds_socket)?;
        holds_socket = false;
    }
    Ok(())
}

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const OTHER_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// A folder on the way to the socket: nobody but `expected_uid` or root may
/// be able to put another socket there.
fn check_folder(folder: &Path, expected_uid: u32, holds_socket: bool) -> Result<(), ClientError> {
    let untrusted = |reason: String| ClientError::UntrustedFolder {
        folder: folder.to_path_buf(),
        reason,
    };
    let metadata = std::fs::symlink_metadata(folder)
        .map_err(|err| untrusted(format!("cannot inspect it: {err}")))?;
    if metadata.file_type().is_symlink() {
        // macOS ships /var as a link to /private/var, owned by root.
        if cfg!(target_os = "macos") && folder == Path::new("/var") && metadata.uid() == 0 {
            return Ok(());
        }
        return Err(untrusted(
            "it is a symbolic link; give the socket's real path".to_owned(),
        ));
    }
    if metadata.uid() != 0 && metadata.uid() != expected_uid {
        return Err(untrusted(format!(
            "it belongs to uid {}, who could replace the socket",
            metadata.uid()
        )));
    }
    // The socket's own folder: only its owner writes it. Folders above: not
    // writable by everyone unless sticky (/tmp); a root-owned folder its
    // group may write (macOS's /var/run) is accepted there.
    let mode = metadata.mode();
    let unsafe_mode = if holds_socket {
        mode & GROUP_OR_OTHER_WRITE != 0
    } else {
        mode & OTHER_WRITE != 0 && mode & STICKY == 0
    };
    if unsafe_mode {
        return Err(untrusted(format!(
            "users other than its owner can write it (mode {:o}), so the socket in it could be swapped",
            mode & 0o7777
        )));
    }
    Ok(())
}

async fn connect_checked(path: &Path, expected_uid: u32) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path).await?;
    let peer_uid = stream.peer_cred()?.uid();
    if peer_uid != expected_uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the process serving {} runs as uid {peer_uid}, not {expected_uid}; refusing to talk to it",
                path.display()
            ),
        ));
    }
    Ok(stream)
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
