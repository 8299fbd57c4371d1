//! Daemon lifecycle: bind the socket, unlock the store, start the audit
//! writer, serve, and shut down gracefully.
//!
//! Invariant: the socket is bound before anything else, so a second daemon
//! stops before touching the store; on shutdown, new connections stop first,
//! in-flight calls get a grace period, the audit queue is drained, the store
//! is closed (WAL checkpointed) and the socket file removed — in that order.

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use occc_proto::v1::{
    audit_server::AuditServer, auth_server::AuthServer, biometric_server::BiometricServer,
    device_keys_server::DeviceKeysServer, environment_server::EnvironmentServer,
    integrity_server::IntegrityServer, system_server::SystemServer, users_server::UsersServer,
};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    audit::{Actor, AuditError, AuditEvent, AuditLog, ChainHasher},
    auth::{AuthEngine, AuthError},
    clock::Clock,
    config::Config,
    crypto::{KeyError, KeyPurpose, KeySource, MasterKey, Sealer, resolve_master_key},
    gate::{Gate, GateLayer},
    integrity::{
        IntegrityMonitor, MonitorParts, QuarantineLock, mounts::GuardedPaths,
        snapshot::SnapshotVault,
    },
    service::{
        AuditService, AuthService, BiometricService, DeviceKeysService, IntegrityService,
        SystemService, UsersService,
    },
    store::{Store, StoreError},
    transport::{SocketError, bind_socket},
};

/// How often sessions' last-seen times are written while serving.
const PERSIST_SESSIONS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(String),
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
    let (store, key_source) = (unlocked.store.clone(), unlocked.key_source.clone());
    let hasher = Arc::new(ChainHasher::new(
        &unlocked.master.derive(KeyPurpose::AuditChain),
    ));
    let (audit, audit_writer) = AuditLog::start(
        store.clone(),
        Arc::clone(&hasher),
        Arc::clone(&clock),
        config.audit.write_timeout(),
        config.audit.queue_capacity,
    )
    .await?;

    let state_dir = config
        .store
        .database
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let auth = AuthEngine::start(
        store.clone(),
        &unlocked.master,
        audit.clone(),
        Arc::clone(&clock),
        &config.auth,
        state_dir,
    )
    .await
    .map_err(StartupError::Auth)?;
    let auth = Arc::new(auth);
    let lock = QuarantineLock::default();
    let sealer = Sealer::new(&unlocked.master.derive(KeyPurpose::Sealing))
        .map_err(|err| StartupError::Serve(format!("sealing key unusable: {err}")))?;
    let vault = Arc::new(SnapshotVault::new(
        store.clone(),
        Arc::new(sealer),
        &unlocked.master.derive(KeyPurpose::Snapshots),
        config.integrity.snapshot_max_bytes,
    ));
    drop(unlocked);
    let monitor = IntegrityMonitor::new(MonitorParts {
        config: config.integrity.clone(),
        store: store.clone(),
        audit: audit.clone(),
        auth: Arc::clone(&auth),
        clock: Arc::clone(&clock),
        vault,
        lock: lock.clone(),
        guarded: GuardedPaths {
            engine_socket: config.integrity.docker_socket.clone(),
            daemon_state: [
                config.store.database.parent().map(Path::to_path_buf),
                Some(config.store.key_file.clone()),
                Some(config.socket.path.clone()),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
    })
    .await
    .map_err(|err| StartupError::Serve(format!("integrity state unreadable: {err}")))?;
    let monitor_task = config
        .integrity
        .enabled
        .then(|| tokio::spawn(Arc::clone(&monitor).run()));
    let session_writer = tokio::spawn(write_sessions_periodically(Arc::clone(&auth)));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SystemServer<SystemService>>().await;
    health.set_serving::<AuditServer<AuditService>>().await;
    health.set_serving::<AuthServer<AuthService>>().await;
    health.set_serving::<UsersServer<UsersService>>().await;
    health
        .set_serving::<DeviceKeysServer<DeviceKeysService>>()
        .await;
    health
        .set_serving::<BiometricServer<BiometricService>>()
        .await;
    health
        .set_serving::<IntegrityServer<IntegrityService>>()
        .await;
    health
        .set_serving::<EnvironmentServer<IntegrityService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(occc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|err| StartupError::Serve(err.to_string()))?;

    let started_at = clock.now();
    let router = Server::builder()
        .layer(GateLayer::new(Gate::new(
            audit.clone(),
            Arc::clone(&auth),
            Arc::clone(&clock),
            lock,
        )))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(SystemServer::new(SystemService::new(
            Arc::clone(&clock),
            started_at,
        )))
        .add_service(AuditServer::new(AuditService::new(store.clone(), hasher)))
        .add_service(AuthServer::new(AuthService::new(Arc::clone(&auth))))
        .add_service(UsersServer::new(UsersService::new(Arc::clone(&auth))))
        .add_service(DeviceKeysServer::new(DeviceKeysService::new(Arc::clone(
            &auth,
        ))))
        .add_service(BiometricServer::new(BiometricService::new(Arc::clone(
            &auth,
        ))))
        .add_service(IntegrityServer::new(IntegrityService::new(
            Arc::clone(&monitor),
            Arc::clone(&auth),
        )))
        .add_service(EnvironmentServer::new(IntegrityService::new(
            monitor,
            Arc::clone(&auth),
        )));
    let (stop_serving, serving_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(router.serve_with_incoming_shutdown(
        UnixListenerStream::new(listener),
        async {
            let _ = serving_stopped.await;
        },
    ));

    audit
        .record(
            Actor::daemon(),
            AuditEvent::DaemonStarted {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                key_source: key_source.to_string(),
            },
        )
        .await?;
    tracing::info!(
        socket = %config.socket.path.display(),
        key_source = %key_source,
        ready_ms = start.elapsed().as_millis() as u64,
        "occcd ready"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let reason = tokio::select! {
        reason = stop => reason,
        ended = &mut server => format!("server ended unexpectedly: {ended:?}"),
    };
    tracing::info!(%reason, "shutting down");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let _ = stop_serving.send(());
    if let Some(task) = monitor_task {
        task.abort();
    }
    let grace = config.socket.shutdown_grace();
    match tokio::time::timeout(grace, &mut server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => tracing::error!(error = %err, "gRPC server ended with an error"),
        Ok(Err(join_error)) => tracing::error!(error = %join_error, "gRPC server task failed"),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "calls still running after the grace period; cutting them off"
            );
            server.abort();
        }
    }
    session_writer.abort();
    auth.persist_sessions().await;
    audit
        .record_or_log(Actor::daemon(), AuditEvent::DaemonStopped { reason })
        .await;
    drop(audit);
    audit_writer.finish().await;
    store.close().await;
    drop(socket_file);
    tracing::info!("occcd stopped");
    Ok(())
}

/// Writes sessions' last-seen times every [`PERSIST_SESSIONS_EVERY`], so a
/// crash loses at most that much of them.
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

async fn write_sessions_periodically(auth: Arc<AuthEngine>) {
    let mut every = tokio::time::interval(PERSIST_SESSIONS_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        auth.persist_sessions().await;
    }
}

/// The open store and the master key that opened it.
#[derive(Debug)]
pub struct UnlockedStore {
    /// The store.
    pub store: Store,
    /// The master key; drop it as soon as subkeys are derived.
    pub master: MasterKey,
    /// Where the key came from.
    pub key_source: KeySource,
}

/// Finds the key and opens the store.
pub async fn open_store(config: &Config) -> Result<UnlockedStore, StartupError> {
    let database = &config.store.database;
    if let Some(folder) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| StartupError::StateDir {
            path: folder.to_owned(),
            source,
        })?;
    }
    let database_exists = database.exists();
    let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (master, key_source) = resolve_master_key(
        credentials_dir.as_deref(),
        &config.store.credential_name,
        &config.store.key_file,
        database,
        database_exists,
    )?;
    let store = Store::open(
        database,
        &master.derive(KeyPurpose::Database),
        !database_exists,
    )
    .await
    .map_err(|source| StartupError::Store {
        key_source: key_source.clone(),
        source,
    })?;
    Ok(UnlockedStore {
        store,
        master,
        key_source,
    })
}

/// SIGTERM and SIGINT handlers, installed before the daemon does anything
/// else so that a stop signal is never lost (nor kills the process outright).
#[derive(Debug)]
pub struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Completes with the name of the first stop signal received.
    pub async fn received(mut self) -> String {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM".to_owned(),
            _ = self.interrupt.recv() => "SIGINT".to_owned(),
        }
    }
}
