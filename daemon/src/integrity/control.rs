//! Environment control: start, stop, restart, status and logs of a
//! monitored container, with non-root enforcement on start.
//!
//! Invariant: start and restart refuse — with every reason — a container
//! configured to run as root, privileged, or with an engine socket mounted
//! (each refusal configurable), and anything while a quarantine holds;
//! occcd never creates, pulls or removes containers.

use std::{sync::Arc, time::Duration};

use bollard::{
    container::LogOutput,
    query_parameters::{LogsOptions, RestartContainerOptions, StopContainerOptions},
};
use tokio_stream::{Stream, StreamExt};

use super::{engine::EngineError, error::IntegrityError, runtime_checks, shared::MonitorShared};
use crate::audit::{Actor, IntegrityAction};

/// Seconds a stop waits before the engine kills the container. Well under
/// the engine client's 10-second request timeout, so a process that ignores
/// SIGTERM is killed and reported stopped, not "engine unreachable".
const STOP_GRACE_SECS: i32 = 4;
/// How long occcd's own lifecycle events are expected after an action.
pub(super) const ACTING_WINDOW: Duration = Duration::from_secs(60);

/// An environment action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start.
    Start,
    /// Stop.
    Stop,
    /// Restart.
    Restart,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// What the engine says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentState {
    /// Configured name.
    pub container: String,
    /// running, paused, exited, created, missing.
    pub state: String,
    /// Image reference.
    pub image: String,
    /// RFC 3339 start time from the engine, if running.
    pub started_at: Option<String>,
}

/// A log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// "stdout" or "stderr".
    pub stream: &'static str,
    /// The text.
    pub text: String,
}

/// Start, stop and restart of the watched containers (refused when unsafe),
/// their state and their logs.
#[derive(Debug)]
pub struct EnvironmentControl {
    shared: Arc<MonitorShared>,
}

impl EnvironmentControl {
    pub(super) fn new(shared: Arc<MonitorShared>) -> Self {
        Self { shared }
    }

    /// Why starting `container` is refused, if it is.
    async fn start_refusals(&self, container: &str) -> Result<Vec<String>, IntegrityError> {
        let engine = self.shared.connected()?;
        let inspect = engine
            .docker()
            .inspect_container(container, None)
            .await
            .map_err(EngineError::from)?;
        let policy = &self.shared.tunables().start_policy;
        let mut reasons = Vec::new();
        if self.shared.lock.is_locked() {
            reasons
                .push("a container is quarantined; a super-admin must release it first".to_owned());
        }
        let user = runtime_checks::configured_user(&inspect);
        if policy.refuse_root && runtime_checks::runs_as_root(&user) {
            reasons.push(format!(
                "configured to run as root (user {user:?}); set a non-root user"
            ));
        }
        if policy.refuse_privileged && runtime_checks::is_privileged(&inspect) {
            reasons.push("privileged; remove --privileged".to_owned());
        }
        if policy.refuse_host_control_mounts {
            for mount in super::mounts::control_mounts(&inspect, &self.shared.guarded) {
                reasons.push(format!(
                    "mounts {}, which is {}; remove that mount",
                    mount.source, mount.reaches
                ));
            }
        }
        Ok(reasons)
    }

    /// Starts, stops or restarts `container` (empty: the first profile).
    pub async fn control(
        &self,
        actor: Actor,
        container: &str,
        action: Action,
    ) -> Result<EnvironmentState, IntegrityError> {
        let name = self.shared.profile(container)?.name.clone();
        if action != Action::Stop {
            let reasons = self.start_refusals(&name).await?;
            if !reasons.is_empty() {
                let message = format!("{} refused: {}", action.verb(), reasons.join("; "));
                self.shared
                    .record(
                        actor,
                        IntegrityAction::EnvironmentRefused,
                        &name,
                        message.clone(),
                    )
                    .await;
                return Err(IntegrityError::Refused(message));
            }
        }
        if let Some(entry) = self.shared.watched().get_mut(&name) {
            let window = i64::try_from(ACTING_WINDOW.as_millis()).unwrap_or(i64::MAX);
            entry.occcd_acting_until = Some(crate::clock::UnixMillis(
                self.shared.clock.now().0.saturating_add(window),
            ));
        }
        let engine = self.shared.connected()?;
        let docker = engine.docker();
        let stop = StopContainerOptions {
            t: Some(STOP_GRACE_SECS),
            signal: None,
        };
        let result = match action {
            Action::Start => docker.start_container(&name, None).await,
            Action::Stop => docker.stop_container(&name, Some(stop)).await,
            Action::Restart => {
                let options = RestartContainerOptions {
                    t: Some(STOP_GRACE_SECS),
                    signal: None,
                };
                docker.restart_container(&name, Some(options)).await
            }
        };
        result.map_err(EngineError::from)?;
        self.shared
            .record(
                actor,
                IntegrityAction::EnvironmentChanged,
                &name,
                action.verb().to_owned(),
            )
            .await;
        self.environment_state(&name).await
    }

    /// What the engine says about `container` (empty: the first profile).
    pub async fn environment_state(
        &self,
        container: &str,
    ) -> Result<EnvironmentState, IntegrityError> {
        let name = self.shared.profile(container)?.name.clone();
        let engine = self.shared.connected()?;
        match engine
            .docker()
            .inspect_container(&name, None)
            .await
            .map_err(EngineError::from)
        {
            Ok(inspect) => {
                let state = inspect.state.clone().unwrap_or_default();
                let status = state
                    .status
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                let started_at = state.started_at.filter(|_| state.running.unwrap_or(false));
                Ok(EnvironmentState {
                    container: name,
                    state: status,
                    image: inspect.config.and_then(|c| c.image).unwrap_or_default(),
                    started_at,
                })
            }
            Err(EngineError::NotFound(_)) => Ok(EnvironmentState {
                container: name,
                state: "missing".to_owned(),
                image: String::new(),
                started_at: None,
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// The log of `container`: the last `tail` lines, then (with `follow`)
    /// new ones.
    pub fn logs(
        &self,
        container: &str,
        tail: u32,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<LogLine, EngineError>> + use<>, IntegrityError> {
        let name = self.shared.profile(container)?.name.clone();
        let engine = self.shared.connected()?;
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            follow,
            tail: tail.to_string(),
            ..Default::default()
        };
        let docker = engine.docker().clone();
        let stream = docker
            .logs(&name, Some(options))
            .filter_map(|item| match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(LogLine {
                        stream: "stdout",
                        text: String::from_utf8_lossy(&message).into_owned(),
                    }))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(LogLine {
                    stream: "stderr",
                    text: String::from_utf8_lossy(&message).into_owned(),
                })),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(err) => Some(Err(EngineError::from(err))),
            });
        Ok(stream)
    }
}
