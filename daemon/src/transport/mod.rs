//! The transport: on Unix the socket (bound by occcd or taken from the
//! service manager), on Windows the named pipe; and who is on the other end
//! of each connection.
//!
//! Invariant: every request that reaches a handler came through a listener
//! this module opened, and carries the peer's identity as the kernel reports
//! it for that connection — or was made inside this process
//! ([`crate::lifecycle::InProcess`], no socket) and carries this process's.

#[cfg(unix)]
mod activation;
pub mod admission;
mod error;
#[cfg(target_os = "macos")]
mod launchd;
mod peer;
#[cfg(windows)]
mod pipe;
#[cfg(unix)]
mod socket;
pub mod uid_shares;

#[cfg(unix)]
pub use activation::{PassedSocket, open_listener, take_passed_socket};
pub use error::{SocketError, SocketOrigin};
#[cfg(unix)]
pub(crate) use peer::InProcessPeer;
pub use peer::PeerCredentials;
#[cfg(windows)]
pub use pipe::{BoundSocket, Listener, PassedSocket, incoming, open_listener, take_passed_socket};
#[cfg(unix)]
pub use socket::{BoundSocket, bind_socket};

/// What the server accepts connections on.
#[cfg(unix)]
pub type Listener = tokio::net::UnixListener;

/// The server's stream of admitted connections (see [`admission`], whose
/// `deadlines` each must keep), and the transport's failure (a Unix
/// listener does not fail on its own: never).
#[cfg(unix)]
pub fn incoming(
    listener: tokio::net::UnixListener,
    deadlines: admission::Deadlines,
) -> (
    impl tokio_stream::Stream<Item = std::io::Result<admission::AdmittedStream<tokio::net::UnixStream>>>
    + Send
    + 'static,
    Failure,
) {
    let (_never, failure) = tokio::sync::oneshot::channel();
    let admission = std::sync::Arc::new(admission::Admission::new(deadlines));
    (
        admission::admitted(listener, admission),
        Failure::new(failure),
    )
}

/// Completes when the transport can no longer accept connections, with
/// why; the daemon then stops (calls in flight get the grace period).
#[derive(Debug)]
pub struct Failure(Option<tokio::sync::oneshot::Receiver<String>>);

impl Failure {
    fn new(receiver: tokio::sync::oneshot::Receiver<String>) -> Self {
        Self(Some(receiver))
    }

    /// Why the transport failed; pending forever if it never does.
    pub async fn reason(&mut self) -> String {
        let Some(receiver) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.await {
            Ok(reason) => reason,
            Err(_) => {
                self.0 = None;
                std::future::pending().await
            }
        }
    }
}
