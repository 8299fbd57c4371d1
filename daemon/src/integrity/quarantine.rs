//! Isolating a compromised container, and the lock that holds sensitive
//! operations while any container is quarantined.
//!
//! Invariant: isolation pauses, disconnects every network and sets the
//! restart policy to "no" — it never stops, removes or changes the
//! container's filesystem, so the evidence stays; every step is attempted
//! even if an earlier one fails, each is bounded in time, and each outcome
//! is reported.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bollard::{
    Docker,
    models::{
        ContainerInspectResponse, ContainerUpdateBody, NetworkDisconnectRequest, RestartPolicy,
        RestartPolicyNameEnum,
    },
};
use serde::Serialize;

use super::engine::{Engine, EngineError};

/// Set while any container is quarantined; the gate reads it.
#[derive(Debug, Clone, Default)]
pub struct QuarantineLock(Arc<AtomicBool>);

impl QuarantineLock {
    /// Whether sensitive operations are locked.
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Locks or unlocks.
    pub fn set(&self, locked: bool) {
        self.0.store(locked, Ordering::SeqCst);
    }
}

/// How long isolation waits for execs being started to settle.
const EXEC_SETTLE: Duration = Duration::from_millis(500);
/// How often it looks.
const EXEC_POLL: Duration = Duration::from_millis(10);
/// Bound on each isolation step: a wedged engine must not stall the monitor.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// What isolation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IsolationReport {
    /// Execs waited for before pausing (they were being started).
    pub execs_settled: Vec<String>,
    /// The container is paused.
    pub paused: bool,
    /// Networks it was disconnected from.
    pub networks_disconnected: Vec<String>,
    /// The restart policy is now "no".
    pub restart_policy_cleared: bool,
    /// Steps that failed, with the engine's words.
    pub errors: Vec<String>,
}

/// What isolation needs to know from the inspect taken before it.
#[derive(Debug, Clone, Default)]
pub struct Before {
    /// Exec ids of the container.
    pub exec_ids: Vec<String>,
    /// Networks it is connected to.
    pub networks: Vec<String>,
}

impl Before {
    /// From an inspect document.
    #[must_use]
    pub fn of(inspect: &ContainerInspectResponse) -> Self {
        Self {
            exec_ids: inspect.exec_ids.clone().unwrap_or_default(),
            networks: inspect
                .network_settings
                .as_ref()
                .and_then(|settings| settings.networks.as_ref())
                .map(|networks| networks.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

async fn bounded<T>(
    step: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{step}: {}", EngineError::from(err))),
        Err(_) => Err(format!(
            "{step}: the engine did not answer within {} s (a pending exec may hold the container; see docs/integrity.md)",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

/// Waits (briefly) until no exec of the container is between "start
/// requested" and "has a pid": pausing in that window leaves `runc exec`
/// frozen and the engine's container lock held (Docker 20.10). An exec
/// created but never started costs the whole wait; starting it after the
/// pause is refused by the engine.
async fn settle_execs(docker: &Docker, exec_ids: &[String]) -> Vec<String> {
    let deadline = Instant::now() + EXEC_SETTLE;
    let mut waited = Vec::new();
    for id in exec_ids {
        loop {
            // The engine marks an exec running before `runc exec` returns;
            // only its pid (or exit code) says the start is over.
            let settled = match docker.inspect_exec(id).await {
                Ok(exec) => exec.exit_code.is_some() || exec.pid.unwrap_or(0) != 0,
                Err(_) => true,
            };
            if settled || Instant::now() >= deadline {
                break;
            }
            if waited.last() != Some(id) {
                waited.push(id.clone());
            }
            tokio::time::sleep(EXEC_POLL).await;
        }
    }
    waited
}

/// Pauses `container`, disconnects it from every network and clears its
/// restart policy; `before` comes from the inspect taken just before.
pub async fn isolate(engine: &Engine, container: &str, before: &Before) -> IsolationReport {
    let docker = engine.docker();
    let mut report = IsolationReport {
        execs_settled: settle_execs(docker, &before.exec_ids).await,
        ..IsolationReport::default()
    };
    match bounded("pause", docker.pause_container(container)).await {
        Ok(()) => report.paused = true,
        // Already paused is what we want.
        Err(err) if err.contains("already paused") => report.paused = true,
        Err(err) => report.errors.push(err),
    }
    for network in &before.networks {
        let request = NetworkDisconnectRequest {
            container: container.to_owned(),
            force: Some(true),
        };
        let step = format!("disconnect {network}");
        match bounded(&step, docker.disconnect_network(network, request)).await {
            Ok(()) => report.networks_disconnected.push(network.clone()),
            Err(err) => report.errors.push(err),
        }
    }
    let update = ContainerUpdateBody {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    match bounded("restart policy", docker.update_container(container, update)).await {
        Ok(()) => report.restart_policy_cleared = true,
        Err(err) => report.errors.push(err),
    }
    report
}
