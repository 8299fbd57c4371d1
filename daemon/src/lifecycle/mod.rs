//! Daemon lifecycle, in phases: bind the socket, unlock the store
//! ([`unlock`]), start the domain ([`domain`]), serve it ([`rpc`]); on a
//! stop signal ([`signals`]) wind down.
//!
//! Invariant: the socket is bound before anything else, so a second daemon
//! stops before touching the store; on shutdown, health says NOT_SERVING
//! and new connections end first, then the monitor stops, calls in flight
//! get the grace period, the domain shuts down (sessions written, the stop
//! audited, the audit queue drained, the store closed with its WAL
//! checkpointed) and the socket file is removed last — in that order.

mod domain;
mod error;
mod rpc;
mod signals;
mod unlock;

use std::{future::Future, sync::Arc, time::Instant};

pub use error::StartupError;
pub use signals::StopSignals;
pub use unlock::{UnlockedStore, open_store};

use crate::{clock::Clock, config::Config, transport::bind_socket};

/// Runs the daemon until `stop` completes with the reason for stopping.
pub async fn serve(
    config: &Config,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = String>,
) -> Result<(), StartupError> {
    let start = Instant::now();
    raise_open_file_limit();
    forbid_core_dumps()?; // again, for callers other than `main`
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
    server.stop_accepting().await;
    domain.stop_monitoring();
    server.drain(config.socket.shutdown_grace()).await;
    domain.shut_down(reason).await;
    drop(socket_file);
    tracing::info!("occcd stopped");
    Ok(())
}

/// No core file of this process, whoever started it (soft and hard limit
/// 0): keys and decrypted database pages live in its memory (see
/// docs/threat-model.md). `main` calls it before any command opens the store.
pub fn forbid_core_dumps() -> Result<(), StartupError> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|err| StartupError::CoreDumps(err.to_string()))
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
