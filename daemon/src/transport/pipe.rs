//! The named-pipe transport on Windows (`\\.\pipe\occcd` by default; the
//! configured `socket.path` is the pipe's name).
//!
//! Invariant: the daemon serves only on pipe instances it created, the first
//! with `FILE_FLAG_FIRST_PIPE_INSTANCE` — a process that took the name
//! first makes start-up fail instead of collecting clients — every one with
//! a protected DACL, owned by the daemon's user, that grants LocalSystem,
//! that user and members of `socket.group` and nobody else (the group
//! cannot create instances), network logons denied and remote clients
//! rejected; the next instance is created before a connected one is handed
//! on or dropped, so the name never goes free while occcd serves (if it
//! cannot be created, occcd stops serving rather than leave the name to
//! anyone); each connection carries the user of the token its client
//! presents, read by impersonating it at identification level after its
//! first byte — never a process id that could be reused — and a client
//! that sends nothing within [`FIRST_BYTE_PATIENCE`] or cannot be
//! identified is disconnected; accepting never waits on identifying: each
//! client is identified on its own task, and beyond
//! [`IDENTIFYING_AT_ONCE`] the oldest still silent is dropped, so silent
//! clients cannot keep others out (an honest client's first byte comes at
//! once); an identified client is then admitted as on Unix
//! ([`super::admission`]: its user's share of connections, its preface by
//! the deadline) or disconnected.

use std::{
    collections::VecDeque,
    convert::Infallible,
    ffi::c_void,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use occc_peer_identity::{
    uid_of_sid,
    windows::{SecurityDescriptor, pipe_client_user, pipe_security},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::windows::named_pipe::{NamedPipeServer, ServerOptions},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::transport::server::Connected;

use super::{
    SocketError, SocketOrigin,
    admission::{Admission, AdmittedStream, Deadlines},
    peer::{PeerCredentials, PipeConnectInfo},
};
use crate::config::SocketConfig;

/// How long a client may take to send its first byte (HTTP/2's preface
/// comes at once).
pub const FIRST_BYTE_PATIENCE: Duration = Duration::from_secs(1);
/// Clients being identified at once; a new one drops the oldest.
pub const IDENTIFYING_AT_ONCE: usize = 64;

/// Windows has no socket activation: nothing is ever passed.
#[derive(Debug)]
pub struct PassedSocket(Infallible);

/// Nothing to take on Windows (the service control manager passes no pipe).
pub fn take_passed_socket(_config: &SocketConfig) -> Result<Option<PassedSocket>, SocketError> {
    Ok(None)
}

/// The pipe's name, held while serving (a pipe leaves no file behind).
#[derive(Debug)]
pub struct BoundSocket;

impl BoundSocket {
    /// Where the listener came from: always occcd itself on Windows.
    #[must_use]
    pub fn origin(&self) -> SocketOrigin {
        SocketOrigin::Bound
    }
}

/// The pipe instance the next client connects to, and how to make more.
#[derive(Debug)]
pub struct Listener {
    name: PathBuf,
    security: Arc<SecurityDescriptor>,
    next: NamedPipeServer,
}

/// Creates the pipe's first instance (see the module invariant).
pub fn open_listener(
    config: &SocketConfig,
    passed: Option<PassedSocket>,
) -> Result<(Listener, BoundSocket), SocketError> {
    if let Some(PassedSocket(never)) = passed {
        match never {}
    }
    let name = config.path.clone();
    let security = pipe_security(config.group.as_deref()).map_err(|err| match config.group {
        Some(ref group) if err.to_string().starts_with("no account") => {
            SocketError::UnknownGroup(group.clone())
        }
        _ => io_failure("cannot make the pipe's security descriptor for", &name, err),
    })?;
    let security = Arc::new(security);
    let first = create_instance(&name, &security, true).map_err(|err| match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::AlreadyExists => {
            SocketError::PipeInUse(name.clone())
        }
        _ => io_failure("cannot create pipe", &name, err),
    })?;
    let listener = Listener {
        name,
        security,
        next: first,
    };
    Ok((listener, BoundSocket))
}

fn io_failure(action: &'static str, path: &Path, source: io::Error) -> SocketError {
    SocketError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[allow(unsafe_code)] // the one FFI call: the pipe with its security attributes
fn create_instance(
    name: &Path,
    security: &SecurityDescriptor,
    first: bool,
) -> io::Result<NamedPipeServer> {
    let mut attributes = security.attributes();
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true);
    // SAFETY: `attributes` points at `security`'s descriptor, alive for the
    // whole call; Windows copies what it needs into the pipe object.
    unsafe {
        options.create_with_security_attributes_raw(name, (&raw mut attributes).cast::<c_void>())
    }
}

/// The server's stream of accepted, identified, admitted connections (see
/// the module invariant; each must keep
/// `deadlines`), and the transport's failure: it completes when the next
/// instance cannot be created, and the daemon stops.
pub fn incoming(listener: Listener, deadlines: Deadlines) -> (Incoming, super::Failure) {
    let (sender, received) = mpsc::channel(IDENTIFYING_AT_ONCE);
    let (failed, failure) = oneshot::channel();
    let admission = Arc::new(Admission::new(deadlines));
    let incoming = Incoming {
        connections: ReceiverStream::new(received),
        _accepting: AbortOnDrop(tokio::spawn(accept(listener, admission, sender, failed))),
    };
    (incoming, super::Failure::new(failure))
}

async fn accept(
    mut listener: Listener,
    admission: Arc<Admission>,
    sender: mpsc::Sender<io::Result<AdmittedStream<PipeConnection>>>,
    failed: oneshot::Sender<String>,
) {
    let mut identifying: VecDeque<(JoinHandle<()>, Arc<AtomicU8>)> = VecDeque::new();
    loop {
        let connected = listener.next.connect().await;
        // The replacement before this instance is handed on or dropped:
        // the name never goes free.
        let replacement = match create_instance(&listener.name, &listener.security, false) {
            Ok(replacement) => replacement,
            Err(err) => {
                let reason = format!(
                    "cannot create the next instance of pipe {}: {err}",
                    listener.name.display()
                );
                tracing::error!(%reason, "no longer serving");
                let _ = failed.send(reason);
                return;
            }
        };
        let pipe = std::mem::replace(&mut listener.next, replacement);
        if let Err(err) = connected {
            tracing::debug!(error = %err, "a pipe client left before it was accepted");
            continue;
        }
        // Only clients still being identified may be dropped for a new one:
        // the task and the evictor each claim the client's state once.
        identifying.retain(|(task, state)| {
            !task.is_finished() && state.load(Ordering::Acquire) == IDENTIFYING
        });
        if identifying.len() >= IDENTIFYING_AT_ONCE
            && let Some((oldest, state)) = identifying.pop_front()
            && claim(&state, EVICTED)
        {
            oldest.abort();
        }
        let sender = sender.clone();
        let admission = Arc::clone(&admission);
        let identified = Arc::new(AtomicU8::new(IDENTIFYING));
        let state = Arc::clone(&identified);
        let task = tokio::spawn(async move {
            match identify(pipe).await {
                // Unless it was evicted meanwhile (then dropped here).
                Ok(connection) if claim(&state, IDENTIFIED) => {
                    // Over its user's share: dropped, i.e. disconnected.
                    if let Some(admitted) = admission.admit_stream(connection.peer.uid, connection)
                    {
                        let _ = sender.send(Ok(admitted)).await;
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "pipe client refused"),
            }
        });
        identifying.push_back((task, identified));
    }
}

/// A pipe client's state while the accept loop tracks it.
const IDENTIFYING: u8 = 0;
const IDENTIFIED: u8 = 1;
const EVICTED: u8 = 2;

/// Moves `state` from [`IDENTIFYING`] to `to`; false if another already
/// moved it (identified and evicted exclude each other).
fn claim(state: &AtomicU8, to: u8) -> bool {
    state
        .compare_exchange(IDENTIFYING, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Reads the client's first byte, then who presented the connection.
async fn identify(mut pipe: NamedPipeServer) -> io::Result<PipeConnection> {
    let mut first = [0u8; 1];
    let read = tokio::time::timeout(FIRST_BYTE_PATIENCE, pipe.read(&mut first))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no first byte within {} s", FIRST_BYTE_PATIENCE.as_secs()),
            )
        })??;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before its first byte",
        ));
    }
    // Impersonation is per thread: a blocking-pool thread runs nothing else meanwhile.
    let (pipe, user) = tokio::task::spawn_blocking(move || {
        let user = pipe_client_user(&pipe);
        (pipe, user)
    })
    .await
    .map_err(io::Error::other)?;
    let uid = uid_of_sid(&user?);
    Ok(PipeConnection {
        pipe,
        first: Some(first[0]),
        peer: PeerCredentials {
            uid,
            gid: uid,
            pid: None,
        },
    })
}

/// Aborts the accepting task when the stream is dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// See [`incoming`].
#[derive(Debug)]
pub struct Incoming {
    connections: ReceiverStream<io::Result<AdmittedStream<PipeConnection>>>,
    _accepting: AbortOnDrop,
}

impl Stream for Incoming {
    type Item = io::Result<AdmittedStream<PipeConnection>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.connections).poll_next(cx)
    }
}

/// One client's pipe, with who it is.
#[derive(Debug)]
pub struct PipeConnection {
    pipe: NamedPipeServer,
    /// The byte read before identifying the client, given back first.
    first: Option<u8>,
    peer: PeerCredentials,
}

impl Connected for PipeConnection {
    type ConnectInfo = PipeConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        PipeConnectInfo(self.peer)
    }
}

impl AsyncRead for PipeConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() > 0
            && let Some(byte) = self.first.take()
        {
            buf.put_slice(&[byte]);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.pipe).poll_read(cx, buf)
    }
}

impl AsyncWrite for PipeConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.pipe).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}
