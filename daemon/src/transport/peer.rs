//! The socket peer's identity, as the kernel reports it (`SO_PEERCRED`).
//!
//! Invariant: these values come from the kernel for the connection itself,
//! never from anything the client sent.

use tonic::transport::server::UdsConnectInfo;

/// uid, gid and pid of the process at the other end of the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// Effective uid of the peer when it connected.
    pub uid: u32,
    /// Effective gid of the peer when it connected.
    pub gid: u32,
    /// The peer's pid, when the kernel reports one.
    pub pid: Option<i32>,
}

impl PeerCredentials {
    /// Reads the credentials tonic attached to an incoming request.
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        let credentials = extensions.get::<UdsConnectInfo>()?.peer_cred?;
        Some(Self {
            uid: credentials.uid(),
            gid: credentials.gid(),
            pid: credentials.pid(),
        })
    }
}
