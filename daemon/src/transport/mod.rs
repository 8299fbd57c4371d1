//! The transport: on Unix the socket (bound by occcd or taken from the
//! service manager), on Windows the named pipe; and who is on the other end
//! of each connection.
//!
//! Invariant: every request that reaches a handler came through a listener
//! this module opened, and carries the peer's identity as the kernel reports
//! it for that connection.

#[cfg(unix)]
mod activation;
mod error;
#[cfg(target_os = "macos")]
mod launchd;
mod peer;
#[cfg(windows)]
mod pipe;
#[cfg(unix)]
mod socket;

#[cfg(unix)]
pub use activation::{PassedSocket, open_listener, take_passed_socket};
pub use error::{SocketError, SocketOrigin};
pub use peer::PeerCredentials;
#[cfg(windows)]
pub use pipe::{BoundSocket, Listener, PassedSocket, incoming, open_listener, take_passed_socket};
#[cfg(unix)]
pub use socket::{BoundSocket, bind_socket};

/// What the server accepts connections on.
#[cfg(unix)]
pub type Listener = tokio::net::UnixListener;

/// The server's stream of accepted connections.
#[cfg(unix)]
#[must_use]
pub fn incoming(listener: Listener) -> tokio_stream::wrappers::UnixListenerStream {
    tokio_stream::wrappers::UnixListenerStream::new(listener)
}
