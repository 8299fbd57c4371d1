//! The peer's identity, as the kernel reports it: `SO_PEERCRED` on a Unix
//! socket; on Windows the user of the pipe's client process (see
//! [`super::pipe`]), as a uid-like number (`occc_peer_identity::uid_of_sid`).
//!
//! Invariant: these values come from the kernel for the connection itself,
//! never from anything the client sent.

/// What the pipe transport attaches to each connection (Windows).
#[cfg(windows)]
#[derive(Debug, Clone, Copy)]
pub struct PipeConnectInfo(pub PeerCredentials);

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
    /// Reads the credentials the transport attached to an incoming request.
    #[cfg(windows)]
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        Some(extensions.get::<PipeConnectInfo>()?.0)
    }

    /// Reads the credentials tonic attached to an incoming request.
    #[cfg(unix)]
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        let credentials = extensions
            .get::<tonic::transport::server::UdsConnectInfo>()?
            .peer_cred?;
        Some(Self {
            uid: credentials.uid(),
            gid: credentials.gid(),
            pid: credentials.pid(),
        })
    }
}
