//! Isolating a compromised container, and the lock that holds sensitive
//! operations while any container is quarantined.
//!
//! Invariant: isolation pauses, disconnects every network and sets the
//! restart policy to "no" — it never stops, removes or changes the
//! container's filesystem, so the evidence stays; every step is attempted
//! even if an earlier one fails, and each outcome is reported.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use bollard::models::{
    ContainerUpdateBody, NetworkDisconnectRequest, RestartPolicy, RestartPolicyNameEnum,
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

/// What isolation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IsolationReport {
    /// The container is paused.
    pub paused: bool,
    /// Networks it was disconnected from.
    pub networks_disconnected: Vec<String>,
    /// The restart policy is now "no".
    pub restart_policy_cleared: bool,
    /// Steps that failed, with the engine's words.
    pub errors: Vec<String>,
}

/// Pauses `container`, disconnects it from every network and clears its
/// restart policy.
pub async fn isolate(engine: &Engine, container: &str) -> IsolationReport {
    let docker = engine.docker();
    let mut report = IsolationReport::default();
    match docker.pause_container(container).await {
        Ok(()) => report.paused = true,
        Err(err) => {
            let err = EngineError::from(err);
            // Already paused is what we want.
            if err.to_string().contains("already paused") {
                report.paused = true;
            } else {
                report.errors.push(format!("pause: {err}"));
            }
        }
    }
    match docker.inspect_container(container, None).await {
        Ok(inspect) => {
            let networks: Vec<String> = inspect
                .network_settings
                .and_then(|settings| settings.networks)
                .map(|networks| networks.into_keys().collect())
                .unwrap_or_default();
            for network in networks {
                let request = NetworkDisconnectRequest {
                    container: container.to_owned(),
                    force: Some(true),
                };
                match docker.disconnect_network(&network, request).await {
                    Ok(()) => report.networks_disconnected.push(network),
                    Err(err) => report
                        .errors
                        .push(format!("disconnect {network}: {}", EngineError::from(err))),
                }
            }
        }
        Err(err) => report
            .errors
            .push(format!("list networks: {}", EngineError::from(err))),
    }
    let update = ContainerUpdateBody {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    match docker.update_container(container, update).await {
        Ok(()) => report.restart_policy_cleared = true,
        Err(err) => report
            .errors
            .push(format!("restart policy: {}", EngineError::from(err))),
    }
    report
}
