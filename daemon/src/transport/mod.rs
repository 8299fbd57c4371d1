//! The Unix-socket transport: binding the socket (or taking it from the
//! service manager) and knowing who is on the other end of each connection.
//!
//! Invariant: every request that reaches a handler came through a socket this
//! module bound, and carries the peer's kernel-reported credentials.

mod activation;
#[cfg(target_os = "macos")]
mod launchd;
mod peer;
mod socket;

pub use activation::{PassedSocket, open_listener, take_passed_socket};
pub use peer::PeerCredentials;
pub use socket::{BoundSocket, SocketError, SocketOrigin, bind_socket};
