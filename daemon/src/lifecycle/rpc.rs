//! Phase three: the gRPC server on the bound socket — health, reflection,
//! the gate and every service — what its health service says (judged in
//! [`super::health`]), and its stop with a grace period.
//!
//! Invariant: every service is behind the gate (deny by default); on stop,
//! health says NOT_SERVING and new connections end first, in-flight calls
//! get `shutdown_grace_ms`, then whatever still runs is cut off.

use std::{sync::Arc, time::Duration};

use occc_proto::v1::ServiceHealth;
use occc_proto::v1::{
    audit_server::AuditServer, auth_server::AuthServer, backups_server::BackupsServer,
    biometric_server::BiometricServer, config_server::ConfigServer,
    device_keys_server::DeviceKeysServer, environment_server::EnvironmentServer,
    integrity_server::IntegrityServer, skills_server::SkillsServer, system_server::SystemServer,
    users_server::UsersServer,
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tonic::{server::NamedService, service::Routes, transport::Server};
use tonic_health::{
    ServingStatus,
    pb::health_server::{Health as HealthChecks, HealthServer},
    server::HealthReporter,
};

use super::{StartupError, domain::Domain, health::Health};
use crate::{
    clock::Clock,
    config::SocketConfig,
    gate::{Gate, GateLayer},
    service::{
        AuditParts, AuditService, AuthService, BackupsService, BiometricService, ConfigService,
        DeviceKeysService, IntegrityService, SkillsService, SystemService, UsersService,
    },
    transport::{self, Listener},
};

type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// The serving gRPC server; dropping it stops it at once.
#[derive(Debug)]
pub struct RpcServer {
    health: HealthReporter,
    stop_serving: Option<oneshot::Sender<()>>,
    /// `None` once the server has ended (it is never awaited twice).
    task: Option<ServerTask>,
    /// Completes when the listener can no longer accept.
    transport_failure: transport::Failure,
    /// What `System/GetInfo` tells of each service's health.
    health_view: watch::Sender<Vec<ServiceHealth>>,
    /// The health last reported (reported again only when it changes).
    reported: Health,
}

/// Calls and streams one connection may have open at once (above the
/// largest per-daemon stream cap, 64 audit watches, so one frontend channel
/// never queues behind its own watches; hyper's default is 200).
const MAX_STREAMS_PER_CONNECTION: u32 = 128;

/// Every service, by its full name; the first two are the integrity
/// services, whose health also depends on the engine.
const SERVICES: [&str; 11] = [
    IntegrityServer::<IntegrityService>::NAME,
    EnvironmentServer::<IntegrityService>::NAME,
    SystemServer::<SystemService>::NAME,
    AuditServer::<AuditService>::NAME,
    AuthServer::<AuthService>::NAME,
    UsersServer::<UsersService>::NAME,
    DeviceKeysServer::<DeviceKeysService>::NAME,
    BiometricServer::<BiometricService>::NAME,
    SkillsServer::<SkillsService>::NAME,
    ConfigServer::<ConfigService>::NAME,
    BackupsServer::<BackupsService>::NAME,
];

fn serving_status(serving: bool) -> ServingStatus {
    match serving {
        true => ServingStatus::Serving,
        false => ServingStatus::NotServing,
    }
}

/// The services' health as `System/GetInfo` tells it: the daemon (`""`)
/// first, then each service.
fn health_view(health: &Health) -> Vec<ServiceHealth> {
    std::iter::once("")
        .chain(SERVICES)
        .enumerate()
        .map(|(index, service)| {
            let why = if (1..=2).contains(&index) {
                &health.integrity
            } else {
                &health.overall
            };
            ServiceHealth {
                service: service.to_owned(),
                serving: why.is_none(),
                reason: why.clone().unwrap_or_default(),
            }
        })
        .collect()
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl RpcServer {
    /// Serves `domain` on `listener` until [`Self::stop`], pinging quiet
    /// connections as `socket` says.
    pub async fn start(
        domain: &Domain,
        listener: Listener,
        clock: &Arc<dyn Clock>,
        socket: &SocketConfig,
    ) -> Result<Self, StartupError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reported = Health::starting();
        for entry in health_view(&reported) {
            health
                .set_service_status(&entry.service, serving_status(entry.serving))
                .await;
        }
        let (health_view, health_watch) = watch::channel(health_view(&reported));
        let router = Server::builder()
            // Per connection (connections per uid: transport::admission).
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            // A peer that stops answering pings (hung, stopped) is dropped
            // with its streams, and its connections' places come back.
            .http2_keepalive_interval(Some(socket.keepalive_every()))
            .http2_keepalive_timeout(Some(socket.keepalive_answer_within()))
            .layer(GateLayer::new(
                gate(domain, clock),
                Arc::clone(&domain.metrics),
            ))
            .add_routes(routes(domain, clock, health_service, health_watch)?);
        let (stop_serving, serving_stopped) = oneshot::channel::<()>();
        let (incoming, transport_failure) = transport::incoming(
            listener,
            transport::admission::Deadlines {
                preface_within: socket.preface_within(),
                write_stalled_after: socket.write_stalled_after(),
            },
        );
        let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = serving_stopped.await;
        }));
        Ok(Self {
            health,
            stop_serving: Some(stop_serving),
            task: Some(task),
            transport_failure,
            health_view,
            reported,
        })
    }

    /// Follows what `System/GetInfo` tells of each service's health.
    #[must_use]
    pub fn health_view(&self) -> watch::Receiver<Vec<ServiceHealth>> {
        self.health_view.subscribe()
    }

    /// Tells `health` through `grpc.health.v1` and `System/GetInfo`, if it
    /// changed.
    pub async fn report_health(&mut self, health: Health) {
        if health == self.reported {
            return;
        }
        // Every service before the daemon's own (`""`, first in the view):
        // a client that sees the daemon's change finds every service's made.
        for entry in health_view(&health).iter().rev() {
            self.health
                .set_service_status(&entry.service, serving_status(entry.serving))
                .await;
        }
        tracing::warn!(
            overall = health.overall.as_deref().unwrap_or("serving"),
            integrity = health.integrity.as_deref().unwrap_or("serving"),
            "health changed"
        );
        self.health_view.send_replace(health_view(&health));
        self.reported = health;
    }

    /// Completes if the server ends by itself, or its listener can no
    /// longer accept (neither should happen), with why.
    pub async fn ended(&mut self) -> String {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            ended = task => {
                self.task = None;
                format!("server ended unexpectedly: {ended:?}")
            }
            reason = self.transport_failure.reason() => reason,
        }
    }

    /// Stops taking calls: every service says NOT_SERVING ("occcd is
    /// stopping"), new connections end.
    pub async fn stop_accepting(&mut self) {
        self.report_health(Health::stopping()).await;
        if let Some(stop) = self.stop_serving.take() {
            let _ = stop.send(());
        }
    }

    /// Waits up to `grace` for calls in flight, then cuts them off.
    pub async fn drain(mut self, grace: Duration) {
        let Some(mut task) = self.task.take() else {
            return;
        };
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::error!(error = %err, "gRPC server ended with an error"),
            Ok(Err(join_error)) => tracing::error!(error = %join_error, "gRPC server task failed"),
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "calls still running after the grace period; cutting them off"
                );
                task.abort();
            }
        }
    }
}

/// The gate every call passes first, on `domain`'s sessions and audit log.
pub(super) fn gate(domain: &Domain, clock: &Arc<dyn Clock>) -> Gate {
    Gate::new(
        domain.audit.clone(),
        Arc::clone(&domain.auth),
        Arc::clone(clock),
        domain.lock.clone(),
        Arc::clone(&domain.refusals),
    )
}

/// Every service of `domain`, health and reflection included: what the
/// gate wraps, on the socket ([`RpcServer::start`]) or in-process
/// ([`super::InProcess`]).
pub(super) fn routes(
    domain: &Domain,
    clock: &Arc<dyn Clock>,
    health_service: HealthServer<impl HealthChecks>,
    health_watch: watch::Receiver<Vec<ServiceHealth>>,
) -> Result<Routes, StartupError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(occc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(StartupError::Reflection)?;
    let auth = &domain.auth;
    // Long-lived streams of every service share one set of places.
    let streams = crate::service::stream_places();
    // One handler for both services: their limits are shared.
    let integrity = IntegrityService::new(
        Arc::clone(&domain.monitor),
        Arc::clone(auth),
        Arc::clone(&streams),
    );
    Ok(Routes::new(health_service)
        .add_service(reflection)
        .add_service(SystemServer::new(SystemService::new(
            Arc::clone(clock),
            clock.now(),
            health_watch,
        )))
        .add_service(AuditServer::new(AuditService::new(AuditParts {
            store: domain.store.clone(),
            log: domain.audit.clone(),
            hasher: Arc::clone(&domain.hasher),
            signer: Arc::clone(&domain.checkpoints),
            auth: Arc::clone(auth),
            clock: Arc::clone(clock),
            streams: Arc::clone(&streams),
        })))
        .add_service(AuthServer::new(AuthService::new(Arc::clone(auth))))
        .add_service(UsersServer::new(UsersService::new(Arc::clone(auth))))
        .add_service(DeviceKeysServer::new(DeviceKeysService::new(Arc::clone(
            auth,
        ))))
        .add_service(BiometricServer::new(BiometricService::new(Arc::clone(
            auth,
        ))))
        .add_service(IntegrityServer::new(integrity.clone()))
        .add_service(EnvironmentServer::new(integrity))
        .add_service(SkillsServer::new(SkillsService::new(
            Arc::clone(&domain.skills),
            Arc::clone(auth),
            Arc::clone(&streams),
        )))
        .add_service(ConfigServer::new(ConfigService::new(
            Arc::clone(&domain.openclaw_config),
            Arc::clone(auth),
        )))
        .add_service(BackupsServer::new(BackupsService::new(
            Arc::clone(&domain.backups),
            domain.audit.clone(),
            Arc::clone(auth),
            Arc::clone(&streams),
        ))))
}
