//! The Unix-socket transport: binding the socket and knowing who is on the
//! other end of each connection.
//!
//! Invariant: every request that reaches a handler came through a socket this
//! module bound, and carries the peer's kernel-reported credentials.

mod peer;
mod socket;

pub use peer::PeerCredentials;
pub use socket::{BoundSocket, SocketError, bind_socket};
