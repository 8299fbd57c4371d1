//! Connecting to occcd without trusting what answers: its Unix socket, or
//! on Windows its named pipe.
//!
//! Invariant (Unix, [`unix`]): before a single byte is sent, the socket file is a socket owned
//! by the expected uid, its folder is owned by that uid or root and written by
//! its owner only, every folder above is owned by that uid or root and not
//! writable by everyone (unless sticky, like `/tmp`), *and*
//! the process that accepted the connection runs as that uid (kernel
//! `SO_PEERCRED`), so a spoofed daemon cannot collect credentials. The
//! TypeScript SDK applies the same file and folder rules.
//!
//! Invariant (Windows, [`windows`]): before a single byte is sent, the pipe
//! belongs to the expected user — LocalSystem for the system daemon, the
//! caller for a dev daemon — and nobody else may create instances of it or
//! change its security (read from the kernel for the pipe's handle), so a
//! process that took the pipe's name cannot collect credentials; the pipe
//! is opened for identification only (the server can see who the client
//! is, never act as them).

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::ClientError;

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(unix)]
use unix::{check_socket_file, connect_checked};
#[cfg(windows)]
use windows::{check_socket_file, connect_checked};

/// Where the packaged daemon listens.
#[cfg(all(unix, not(target_os = "macos")))]
pub const SYSTEM_SOCKET: &str = "/run/occcd/occcd.sock";
/// Where the packaged daemon listens (macOS has `/var/run`, not `/run`).
#[cfg(target_os = "macos")]
pub const SYSTEM_SOCKET: &str = "/var/run/occcd/occcd.sock";
/// Where the packaged daemon listens (Windows: a named pipe).
#[cfg(windows)]
pub const SYSTEM_SOCKET: &str = occc_peer_identity::SYSTEM_PIPE;

/// How to reach the daemon and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The daemon's socket.
    pub socket_path: PathBuf,
    /// uid that must own the socket and run the daemon: 0 in system mode.
    /// On Windows the uid-like number of the daemon's user
    /// (`occc_peer_identity::uid_of_sid`): 0 is LocalSystem.
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
            socket_path: dev_socket(dir),
            expected_owner_uid: own_uid(),
        }
    }
}

/// Where a dev-mode daemon in `dir` listens (Windows: a pipe named after
/// the folder, as the daemon names it).
#[cfg(unix)]
fn dev_socket(dir: &Path) -> PathBuf {
    dir.join("occcd.sock")
}

#[cfg(windows)]
fn dev_socket(dir: &Path) -> PathBuf {
    occc_peer_identity::dev_pipe_name(dir)
}

/// This process's uid (Windows: its user's uid-like number; if that
/// cannot be read, 1 — a number no Windows user maps to, so nothing is
/// trusted).
#[cfg(unix)]
fn own_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[cfg(windows)]
fn own_uid() -> u32 {
    occc_peer_identity::windows::current_user_sid()
        .map(|sid| occc_peer_identity::uid_of_sid(&sid))
        .unwrap_or(1)
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
