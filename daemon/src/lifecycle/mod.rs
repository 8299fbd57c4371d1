//! Daemon lifecycle, in phases: bind the socket, unlock the store
//! ([`unlock`]), start the domain ([`domain`]), serve it ([`rpc`]), then
//! stop in reverse order.
//!
//! Invariant: the socket is bound before anything else, so a second daemon
//! stops before touching the store; on shutdown, new connections stop first,
//! in-flight calls get a grace period, the domain shuts down (the audit
//! queue drained, the store closed with its WAL checkpointed) and the
//! socket file is removed — in that order.

mod domain;
mod rpc;
mod signals;
mod unlock;

use std::{future::Future, path::PathBuf, sync::Arc, time::Instant};

pub use signals::StopSignals;
pub use unlock::{UnlockedStore, open_store};

use crate::{
    audit::AuditError,
    auth::AuthError,
    clock::Clock,
    config::Config,
    crypto::{KeyError, KeySource, SealError},
    store::StoreError,
    transport::{SocketError, bind_socket},
};

/// Why the daemon could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// No usable master key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store did not open with the key found.
    #[error("cannot open the store with the {key_source}: {source}")]
    Store {
        /// Where the key came from.
        key_source: KeySource,
        /// What the store said.
        source: StoreError,
    },
    /// The state folder could not be prepared.
    #[error("cannot create state folder {path}: {source}")]
    StateDir {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The audit log could not be started or written.
    #[error("audit log unavailable at start: {0}")]
    Audit(#[from] AuditError),
    /// The authentication engine could not start.
    #[error("authentication engine: {0}")]
    Auth(AuthError),
    /// The key sealing evidence and secrets is unusable.
    #[error("sealing key unusable: {0}")]
    Sealing(SealError),
    /// The integrity monitor's stored state could not be read.
    #[error("integrity state unreadable: {0}")]
    IntegrityState(StoreError),
    /// The reflection service could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
}

/// Runs the daemon until `stop` completes with the reason for stopping.
pub async fn serve(
    config: &Config,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = String>,
) -> Result<(), StartupError> {
    let start = Instant::now();
    raise_open_file_limit();
    let (listener, socket_file) = bind_socket(&config.socket)?;
    let unlocked = open_store(config).await?;
    let mut domain = domain::Domain::start(config, &clock, unlocked).await?;
    let mut server = rpc::RpcServer::start(&domain, listener, &clock).await?;
    domain.announce_started().await?;
    tracing::info!(
        socket = %config.socket.path.display(),
        key_source = %domain.key_source,
        ready_ms = start.elapsed().as_millis() as u64,
        "occcd ready"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let reason = tokio::select! {
        reason = stop => reason,
        ended = server.ended() => ended,
    };
    tracing::info!(%reason, "shutting down");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    domain.stop_monitoring();
    server.stop(config.socket.shutdown_grace()).await;
    domain.shut_down(reason).await;
    drop(socket_file);
    tracing::info!("occcd stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard one: walks of a
/// container's trees, engine connections and clients must not share a
/// default of 1,024 that a container could use up.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(error = %err, soft, hard, "open-file limit not raised");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "open-file limit not read"),
    }
}
