//! Daemon lifecycle, in phases: bind the socket (or take it from the service
//! manager), unlock the store ([`unlock`]), start the domain ([`domain`]),
//! serve it ([`rpc`]) while telling the service manager how it is
//! ([`supervision`]) and rereading the config on SIGHUP ([`reload`]); on a
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
pub mod health;
mod heap;
#[cfg(unix)]
mod in_process;
mod key_watch;
pub mod reload;
mod rpc;
mod signals;
mod state_files;
mod state_lock;
pub mod supervision;
mod unlock;

use std::{sync::Arc, time::Instant};

use tokio::{sync::mpsc, time::MissedTickBehavior};

pub use error::StartupError;
pub use heap::keep_heap_returnable;
#[cfg(unix)]
pub use in_process::InProcess;
pub use reload::Reloader;
pub use signals::{SignalRequest, Signals};
#[cfg(unix)]
pub use state_files::own_like_state_folder;
pub use state_files::with_suffix;
pub use state_lock::{StateLock, state_folder_of};
use supervision::{Notice, ServiceManager};
pub use unlock::{UnlockedStore, open_store};

use crate::{
    clock::Clock,
    config::Config,
    gate,
    transport::{PassedSocket, open_listener},
};

/// Runs the daemon until a stop request, reloading on each reload request
/// (from [`Signals::forward`], or a test's channel).
pub async fn serve(
    config: &Config,
    clock: Arc<dyn Clock>,
    mut requests: mpsc::Receiver<SignalRequest>,
    mut reloader: Reloader,
    passed_socket: Option<PassedSocket>,
    manager: ServiceManager,
) -> Result<(), StartupError> {
    let start = Instant::now();
    raise_open_file_limit();
    forbid_core_dumps()?; // again, for callers other than `main`
    let (listener, socket_file) = open_listener(&config.socket, passed_socket)?;
    let metrics_access = metrics_access(config)?;
    // Held until the daemon ends: `occcd restore` cannot run beside it.
    let _state_lock = state_lock(config)?;
    let unlocked = open_store(config).await?;
    let key_watch = key_watch::KeyWatch::new(
        &unlocked.key_source,
        &unlocked.keys.derive(crate::crypto::KeyPurpose::Database),
    );
    let mut domain = domain::Domain::start(config, &clock, unlocked).await?;
    let key_watch =
        key_watch.map(|watch| tokio::spawn(watch.run(domain.store.clone(), domain.audit.clone())));
    let mut server = rpc::RpcServer::start(&domain, listener, &clock, &config.socket).await?;
    let metrics_task = metrics_access.map(|access| serve_metrics(access, &domain, &server, &clock));
    domain.announce_started().await?;
    tracing::info!(
        socket = %config.socket.path.display(),
        socket_origin = %socket_file.origin(),
        key_source = %domain.key_source,
        ready_ms = start.elapsed().as_millis() as u64,
        "occcd ready"
    );
    let ready_at = clock.now();
    manager.notify(&[Notice::Ready, Notice::Status(supervision::SERVING)]);
    let watchdog = manager.watchdog();
    let mut checks = tokio::time::interval(supervision::check_every(watchdog));
    checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health_checks = tokio::time::interval(health::HEALTH_EVERY);
    health_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heap_returns = tokio::time::interval(heap::RETURN_FREE_PAGES_EVERY);
    heap_returns.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let commit_patience = config.audit.write_timeout();
    // The store's answer to the last check's query (health between checks
    // is judged from memory and never waits on the store).
    let mut store_answer: Result<(), String> = Ok(());

    let reason = loop {
        tokio::select! {
            // Requests first: a stop or a reload never waits behind a check.
            biased;
            request = requests.recv() => match request {
                None => break "the control channel closed".to_owned(),
                Some(SignalRequest::Stop(reason)) => break reason,
                Some(SignalRequest::Reload) => {
                    manager.notify(&[Notice::Reloading]);
                    let summary = reloader.reload(&domain).await;
                    manager.notify(&[Notice::Ready, Notice::Status(&summary)]);
                }
            },
            ended = server.ended() => break ended,
            _ = checks.tick() => {
                let probe = domain.probe(ready_at).await;
                store_answer = probe.store.clone();
                notify_watchdog(&probe, &manager, &clock);
                server.report_health(health::judge(clock.now(), &probe, commit_patience)).await;
            }
            _ = health_checks.tick() => {
                domain.record_audit_gap();
                let owed = domain.refusals.take_owed(clock.now(), false);
                if !owed.is_empty() {
                    tokio::spawn(gate::record_owed(domain.audit.clone(), owed));
                }
                let probe = domain.quick_probe(ready_at, store_answer.clone());
                server.report_health(health::judge(clock.now(), &probe, commit_patience)).await;
            }
            _ = heap_returns.tick() => heap::return_free_pages(),
        }
    };
    tracing::info!(%reason, "shutting down");
    manager.notify(&[Notice::Stopping]);
    server.stop_accepting().await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    domain.stop_monitoring();
    if let Some(watch) = key_watch {
        watch.abort();
    }
    server.drain(config.socket.shutdown_grace()).await;
    // No call comes in any more: what the refusal budget counted is audited.
    let owed = domain.refusals.take_owed(clock.now(), true);
    gate::record_owed(domain.audit.clone(), owed).await;
    domain.shut_down(reason).await;
    // Unix: removes the socket file occcd bound (a pipe leaves none).
    #[cfg_attr(windows, allow(clippy::drop_non_drop))]
    drop(socket_file);
    tracing::info!("occcd stopped");
    Ok(())
}

/// The state folder's lock (the folder is created first if need be).
fn state_lock(config: &Config) -> Result<StateLock, StartupError> {
    let folder = state_folder_of(&config.store.database);
    std::fs::create_dir_all(&folder).map_err(|source| StartupError::StateDir {
        path: folder.clone(),
        source,
    })?;
    StateLock::serving(&folder).map_err(StartupError::StateLocked)
}

/// Who may scrape `metrics.listen`, if it is set: a config error (an
/// address off loopback, an unreadable or empty token file) stops start-up
/// with the reason; a port someone else holds does not (see
/// [`crate::service::metrics_http::bind_and_serve`]).
fn metrics_access(
    config: &Config,
) -> Result<Option<crate::service::metrics_http::Access>, StartupError> {
    let Some(address) = config.metrics.address().map_err(StartupError::Metrics)? else {
        return Ok(None);
    };
    let token = match &config.metrics.token_file {
        None => None,
        Some(path) => {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|err| {
                StartupError::Metrics(format!("token_file {}: {err}", path.display()))
            })?);
            let token = zeroize::Zeroizing::new(text.trim().to_owned());
            if token.is_empty() {
                return Err(StartupError::Metrics(format!(
                    "token_file {} is empty",
                    path.display()
                )));
            }
            Some(Arc::new(token))
        }
    };
    Ok(Some(crate::service::metrics_http::Access {
        address,
        token,
    }))
}

/// Serves `GET /metrics` as `access` says: the counters, what the domain
/// holds now, and each service's health.
fn serve_metrics(
    access: crate::service::metrics_http::Access,
    domain: &domain::Domain,
    server: &rpc::RpcServer,
    clock: &Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    let (metrics, auth, monitor, audit) = (
        Arc::clone(&domain.metrics),
        Arc::clone(&domain.auth),
        Arc::clone(&domain.monitor),
        domain.audit.clone(),
    );
    let (health, clock) = (server.health_view(), Arc::clone(clock));
    let render: crate::service::metrics_http::Render = Arc::new(move || {
        let mut sampled = domain::sample(&auth, &monitor, &audit, clock.now());
        sampled.services = health
            .borrow()
            .iter()
            .map(|service| (service.service.clone(), service.serving))
            .collect();
        crate::metrics::exposition::render(&metrics.snapshot(), &sampled)
    });
    tokio::spawn(crate::service::metrics_http::bind_and_serve(access, render))
}

/// Sends the watchdog keep-alive (when `manager` asked for one) only if
/// `probe` found nothing stuck, and says what is otherwise.
fn notify_watchdog(probe: &supervision::Probe, manager: &ServiceManager, clock: &Arc<dyn Clock>) {
    let stuck = supervision::stuck(clock.now(), probe);
    if !stuck.is_empty() {
        let stuck = stuck.join("; ");
        tracing::error!(%stuck, "not alive: the watchdog keep-alive is withheld");
    }
    let (keep_alive, status) = supervision::after_check(&stuck, manager.watchdog().is_some());
    let status = Notice::Status(&status);
    match keep_alive {
        true => manager.notify(&[Notice::Watchdog, status]),
        false => manager.notify(&[status]),
    }
}

/// No core file of this process, whoever started it (soft and hard limit
/// 0): keys and decrypted database pages live in its memory (see
/// docs/threat-model.md). `main` calls it before any command opens the store.
#[cfg(unix)]
pub fn forbid_core_dumps() -> Result<(), StartupError> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|err| StartupError::CoreDumps(err.to_string()))
}

/// Windows writes no dump of a crashed process unless Windows Error
/// Reporting's `LocalDumps` is configured for it (docs/operations.md says
/// not to); there is no per-process limit to set.
#[cfg(windows)]
pub fn forbid_core_dumps() -> Result<(), StartupError> {
    Ok(())
}

/// Windows has no per-process limit on handles to raise.
#[cfg(windows)]
fn raise_open_file_limit() {}

/// Raises the soft limit on open files to the hard one: walks of a
/// container's trees, engine connections and clients must not share a
/// default of 1,024 that a container could use up.
#[cfg(unix)]
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
