//! The peer's identity, as the kernel reports it: `SO_PEERCRED` on a Unix
//! socket; on Windows the user of the pipe's client process (see
//! [`super::pipe`]), as a uid-like number (`occc_peer_identity::uid_of_sid`).
//!
//! Invariant: these values come from the kernel for the connection itself
//! (or, in-process, for this process), never from anything the client sent.

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

    /// Reads the credentials tonic attached to an incoming request, or, for
    /// a call made inside this process ([`crate::lifecycle::InProcess`]),
    /// this process's own.
    #[cfg(unix)]
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        let Some(connection) = extensions.get::<tonic::transport::server::UdsConnectInfo>() else {
            return extensions.get::<InProcessPeer>().map(|peer| peer.0);
        };
        let credentials = connection.peer_cred?;
        Some(Self {
            uid: credentials.uid(),
            gid: credentials.gid(),
            pid: credentials.pid(),
        })
    }
}

/// The peer of a call made inside this process, with no socket: the
/// process itself, as the kernel knows it. Only
/// [`crate::lifecycle::InProcess`] attaches it (request extensions never
/// come from the wire).
#[cfg(unix)]
#[derive(Debug, Clone, Copy)]
pub struct InProcessPeer(PeerCredentials);

#[cfg(unix)]
impl InProcessPeer {
    /// This process's effective uid and gid, and its pid.
    pub(crate) fn this_process() -> Self {
        Self(PeerCredentials {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            pid: Some(nix::unistd::getpid().as_raw()),
        })
    }
}
