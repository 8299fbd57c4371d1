//! What the integrity flows (watching, response, environment control) share:
//! the configuration, the store, the audit log, the clock, what is known of
//! each watched container, the engine connection, and the watchers' channel;
//! with the status bookkeeping built on them.
//!
//! Invariant: a container's health is `Unknown` until a sweep of it
//! succeeds over a live engine connection and again as soon as that
//! connection is lost; every new finding is stored before it is broadcast;
//! flows reach shared state only through this type, never through one
//! another.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::{Mutex as AsyncMutex, broadcast, mpsc, oneshot, watch};

use super::{
    config::{ContainerProfile, IntegrityConfig},
    engine::{Engine, EngineError},
    error::IntegrityError,
    finding::{ContainerStatus, Finding, Health, Severity},
    mounts::GuardedPaths,
    quarantine::QuarantineLock,
    snapshot::SnapshotVault,
    tunables::{Heartbeat, Tunables},
    watched::Watched,
};
use crate::{
    audit::{Actor, AuditEvent, AuditLog, IntegrityAction},
    clock::{Clock, UnixMillis},
    store::{FindingRow, Store},
};

/// Recent engine events kept per container for snapshots.
pub(super) const RECENT_EVENTS: usize = 256;
/// How long RunChecks waits for the sweep.
const RUN_NOW_TIMEOUT: Duration = Duration::from_secs(60);

/// A change watchers see.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorUpdate {
    /// A container's status changed.
    Status(ContainerStatus),
    /// A new finding.
    Finding(Finding),
}

/// A request to the watch loop.
#[derive(Debug)]
pub(super) enum Command {
    /// Sweep every container now (hashes included) and answer.
    RunNow(oneshot::Sender<()>),
}

/// What a refresh knows about whether the container can be seen.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sight<'a> {
    /// A sweep of it just succeeded.
    Seen,
    /// Nothing new: it stays as seen or unseen as it was.
    Same,
    /// It cannot be seen, for this reason.
    Blind(&'a str),
}

/// The state the integrity flows share.
#[derive(Debug)]
pub(super) struct MonitorShared {
    /// Settings a reload may change; read at each decision.
    pub(super) tunables: watch::Sender<Tunables>,
    /// When the watch loop last went round (the service watchdog reads it).
    pub(super) heartbeat: Heartbeat,
    pub(super) config: IntegrityConfig,
    pub(super) store: Store,
    pub(super) audit: AuditLog,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) vault: Arc<SnapshotVault>,
    pub(super) lock: QuarantineLock,
    pub(super) guarded: GuardedPaths,
    pub(super) watched: Mutex<HashMap<String, Watched>>,
    pub(super) updates: broadcast::Sender<MonitorUpdate>,
    pub(super) engine: Mutex<Option<Engine>>,
    /// Requests to the watch loop.
    pub(super) commands: mpsc::Sender<Command>,
    /// Held while open findings change (memory and store together).
    pub(super) open_findings: AsyncMutex<()>,
    /// OpenClaw's skills folders, held to the approved set.
    pub(super) skills: Option<super::skill_check::SkillsWatch>,
    /// OpenClaw config files, held to their accepted versions.
    pub(super) openclaw_config: Option<super::config_check::ConfigWatch>,
    /// Check durations and isolation latency.
    pub(super) metrics: Arc<crate::metrics::Metrics>,
}

impl MonitorShared {
    /// The reloadable settings as they are now.
    pub(super) fn tunables(&self) -> Tunables {
        self.tunables.borrow().clone()
    }

    /// Audits an integrity event about `container`.
    pub(super) async fn record(
        &self,
        actor: Actor,
        action: IntegrityAction,
        container: &str,
        detail: String,
    ) {
        let event = AuditEvent::Integrity {
            action,
            container: container.to_owned(),
            detail: Some(detail),
        };
        self.audit.record_or_log(actor, event).await;
    }

    /// The profile named `container` (the first when empty).
    pub(super) fn profile(&self, container: &str) -> Result<&ContainerProfile, IntegrityError> {
        self.config
            .profile(container)
            .ok_or_else(|| IntegrityError::UnknownContainer(container.to_owned()))
    }

    /// A connected engine, or why there is none.
    pub(super) fn connected(&self) -> Result<Engine, IntegrityError> {
        self.engine().ok_or_else(|| {
            IntegrityError::Engine(EngineError::Unreachable(format!(
                "not connected to {}",
                self.config.docker_socket.display()
            )))
        })
    }

    pub(super) fn watched(&self) -> MutexGuard<'_, HashMap<String, Watched>> {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live engine connection, if any.
    pub(super) fn engine(&self) -> Option<Engine> {
        self.engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_engine(&self, engine: Option<Engine>) {
        *self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine;
    }

    /// Every container's status, in configuration order.
    pub(super) fn status(&self) -> Vec<ContainerStatus> {
        let watched = self.watched();
        self.config
            .containers
            .iter()
            .filter_map(|profile| watched.get(&profile.name))
            .map(|entry| entry.status.clone())
            .collect()
    }

    /// Stores `findings` (history) and tells watchers.
    pub(super) async fn publish_findings(&self, findings: &[Finding]) {
        let rows: Vec<FindingRow> = findings.iter().map(Finding::history_row).collect();
        if let Err(err) = self.store.record_findings(&rows).await {
            tracing::error!(error = %err, "findings not stored");
        }
        for finding in findings {
            let _ = self.updates.send(MonitorUpdate::Finding(finding.clone()));
        }
        // Waiting for room in the audit queue like every caller (a full queue
        // delays the monitor's bookkeeping; it never drops these entries).
        for finding in findings {
            let entry = AuditEvent::finding_recorded(
                &finding.container,
                finding.check_id,
                finding.severity.as_str(),
                &finding.summary,
            );
            self.audit.record_or_log(Actor::daemon(), entry).await;
        }
    }

    /// Recomputes `container`'s health from what is known and tells
    /// watchers if anything changed. A container the monitor cannot see
    /// stays `Unknown` (or `Compromised` if quarantined) until a sweep of it
    /// succeeds, whatever else refreshes it meanwhile.
    pub(super) fn refresh(&self, container: &str, sight: Sight<'_>) {
        let now = self.clock.now();
        let changed = {
            let mut watched = self.watched();
            let Some(entry) = watched.get_mut(container) else {
                return;
            };
            let before = entry.status.clone();
            let mut open: Vec<Finding> = entry.sweep_findings.clone();
            open.extend(entry.event_findings.iter().cloned());
            entry.status.findings = open;
            entry.status.baseline_pinned = entry.baseline.is_some();
            entry.status.checked_at = now;
            match sight {
                Sight::Seen => entry.unseen = None,
                Sight::Blind(reason) => entry.unseen = Some(reason.to_owned()),
                Sight::Same => {}
            }
            match entry.unseen.as_deref() {
                None => {
                    entry.status.health =
                        Health::of(&entry.status.findings, entry.status.quarantine.is_some());
                    entry.status.reason = health_reason(&entry.status);
                }
                // A quarantined container stays compromised while unseen.
                Some(blind) if entry.status.quarantine.is_some() => {
                    entry.status.health = Health::Compromised;
                    entry.status.reason = format!("quarantined; not visible now: {blind}");
                }
                Some(blind) => {
                    entry.status.health = Health::Unknown;
                    entry.status.reason = blind.to_owned();
                }
            }
            // What a person reads: each finding's check, severity, summary
            // and count (a repeat counts), not when it was last observed.
            let gist = |findings: &[Finding]| -> Vec<(&'static str, Severity, String, u32)> {
                findings
                    .iter()
                    .map(|f| (f.check_id, f.severity, f.summary.clone(), f.occurrences))
                    .collect()
            };
            let same = before.health == entry.status.health
                && before.reason == entry.status.reason
                && gist(&before.findings) == gist(&entry.status.findings)
                && before.quarantine == entry.status.quarantine
                && before.baseline_pinned == entry.status.baseline_pinned;
            (!same).then(|| (before.health, entry.status.clone()))
        };
        if let Some((before, status)) = changed {
            if before != status.health {
                // Recorded beside the monitor (this runs under no runtime
                // wait): the entry waits for room in the queue like any.
                let entry = AuditEvent::ContainerHealthChanged {
                    container: status.container.clone(),
                    from: before.as_str().to_owned(),
                    to: status.health.as_str().to_owned(),
                    reason: status.reason.clone(),
                };
                let audit = self.audit.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(
                            async move { audit.record_or_log(Actor::daemon(), entry).await },
                        );
                    }
                    Err(_) => tracing::error!(kind = entry.kind(), "audit entry lost: no runtime"),
                }
            }
            let _ = self.updates.send(MonitorUpdate::Status(status));
        }
    }

    /// Marks every container unknown, with `reason`.
    pub(super) fn blind(&self, reason: &str) {
        for profile in &self.config.containers {
            self.refresh(&profile.name, Sight::Blind(reason));
        }
    }

    /// The staleness watchdog: a container whose last complete check is
    /// older than twice the poll interval is `Unknown`, whatever else is
    /// going on (a hung engine call, a wedged sweep, a stuck host read).
    pub(super) fn mark_stale(&self, started: UnixMillis) {
        let now = self.clock.now();
        let limit = self.tunables().poll_interval() * 2;
        let stale: Vec<(String, String)> = self
            .watched()
            .iter()
            .filter_map(|(name, entry)| {
                let since = entry.last_complete.unwrap_or(started);
                (now.since(since) > limit).then(|| {
                    // Stable wording: watchers hear of it once, not every tick.
                    let reason = match entry.last_complete {
                        Some(at) => format!(
                            "stale: no complete check for over {} s (the last one finished at {} ms since the epoch)",
                            limit.as_secs_f32(),
                            at.0
                        ),
                        None => format!(
                            "stale: no complete check in the {} s since the monitor started",
                            limit.as_secs_f32()
                        ),
                    };
                    (name.clone(), reason)
                })
            })
            .collect();
        for (name, reason) in stale {
            self.refresh(&name, Sight::Blind(&reason));
        }
    }
    /// Sweeps every container now; returns once done, or after
    /// [`RUN_NOW_TIMEOUT`] in all (room in the loop's queue included, so a
    /// busy loop never holds a caller longer). It closes no finding.
    /// Refused when the monitor is off: no loop would answer.
    pub(super) async fn run_checks_now(&self) -> Result<Vec<ContainerStatus>, IntegrityError> {
        if !self.config.enabled {
            return Err(IntegrityError::Refused(
                "the integrity monitor is off (integrity.enabled = false in occcd.toml): there is nothing to run checks with".to_owned(),
            ));
        }
        let (reply, done) = oneshot::channel();
        let _ = tokio::time::timeout(RUN_NOW_TIMEOUT, async {
            if self.commands.send(Command::RunNow(reply)).await.is_ok() {
                let _ = done.await;
            }
        })
        .await;
        Ok(self.status())
    }
}

fn health_reason(status: &ContainerStatus) -> String {
    if let Some(quarantine) = &status.quarantine {
        if quarantine.verified() {
            return format!("quarantined: {}", quarantine.reason);
        }
        return format!(
            "quarantined: {}; isolation {}",
            quarantine.reason, quarantine.isolation
        );
    }
    match status
        .findings
        .iter()
        .max_by_key(|finding| finding.severity)
    {
        Some(worst) if status.health != Health::Healthy => worst.summary.clone(),
        _ => "no findings above low".to_owned(),
    }
}
