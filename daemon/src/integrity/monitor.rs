//! The integrity monitor's shared state and what callers may ask of it:
//! status, a watch of changes, findings history, run checks now.
//!
//! Invariant: a container's health is `Unknown` until a sweep of it
//! succeeds over a live engine connection and again as soon as that
//! connection is lost; every new finding is stored before it is broadcast;
//! the quarantine lock mirrors the stored unreleased quarantines.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::sync::{Mutex as AsyncMutex, broadcast, mpsc, oneshot};

use super::{
    baseline::Baseline,
    config::IntegrityConfig,
    engine::Engine,
    finding::{ContainerStatus, Finding, Health, QuarantineState, Severity},
    quarantine::QuarantineLock,
    recording::Recordings,
    snapshot::SnapshotVault,
    sweep_slot::SweepSlot,
    watched::Watched,
};
use crate::{
    audit::AuditLog,
    auth::AuthEngine,
    clock::{Clock, UnixMillis},
    store::{FindingRow, Store, StoreError},
};

/// Recent engine events kept per container for snapshots.
pub(super) const RECENT_EVENTS: usize = 256;
/// Changes buffered per watcher before it lags.
const WATCH_BUFFER: usize = 256;
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

/// The integrity monitor (cheap to share).
#[derive(Debug)]
pub struct IntegrityMonitor {
    pub(super) config: IntegrityConfig,
    pub(super) store: Store,
    pub(super) audit: AuditLog,
    pub(super) auth: Arc<AuthEngine>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) vault: Arc<SnapshotVault>,
    pub(super) lock: QuarantineLock,
    pub(super) guarded: super::mounts::GuardedPaths,
    pub(super) watched: Mutex<HashMap<String, Watched>>,
    pub(super) updates: broadcast::Sender<MonitorUpdate>,
    pub(super) engine: Mutex<Option<Engine>>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) command_queue: AsyncMutex<Option<mpsc::Receiver<Command>>>,
    /// Held while a container is responded to (quarantine, re-isolation,
    /// pin), one per container.
    responding: HashMap<String, Arc<AsyncMutex<()>>>,
    /// Containers whose isolation is being checked now.
    reisolating: Mutex<std::collections::HashSet<String>>,
    /// Held while open findings change (memory and store together).
    pub(super) open_findings: AsyncMutex<()>,
    /// Who sweeps each container next.
    pub(super) sweep_slots: HashMap<String, Arc<SweepSlot>>,
    /// This monitor, for the tasks it spawns.
    pub(super) me: Weak<Self>,
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

/// Everything the monitor needs from the rest of the daemon.
#[derive(Debug)]
pub struct MonitorParts {
    /// Configuration.
    pub config: IntegrityConfig,
    /// Database.
    pub store: Store,
    /// Audit log.
    pub audit: AuditLog,
    /// Sessions to revoke on compromise.
    pub auth: Arc<AuthEngine>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Snapshot storage.
    pub vault: Arc<SnapshotVault>,
    /// The lock the gate reads.
    pub lock: QuarantineLock,
    /// What no container may reach through a mount.
    pub guarded: super::mounts::GuardedPaths,
}

impl IntegrityMonitor {
    /// Builds the monitor and restores baselines and quarantines.
    pub async fn new(parts: MonitorParts) -> Result<Arc<Self>, StoreError> {
        let now = parts.clock.now();
        let mut watched = HashMap::new();
        for profile in &parts.config.containers {
            let baseline = match parts.store.baseline(&profile.name).await? {
                Some(row) => Baseline::from_row(row).ok(),
                None => None,
            };
            let mut status = ContainerStatus::unseen(&profile.name, "not checked yet", now);
            status.baseline_pinned = baseline.is_some();
            watched.insert(
                profile.name.clone(),
                Watched {
                    status,
                    sweep_findings: Vec::new(),
                    event_findings: Vec::new(),
                    baseline,
                    recent_events: VecDeque::new(),
                    hashed_at: None,
                    occcd_acting_until: None,
                    unseen: Some("not checked yet".to_owned()),
                    recordings: Recordings::default(),
                    last_complete: None,
                    memory: super::sweep::SweepMemory::default(),
                    known: None,
                    watch_roots: Vec::new(),
                },
            );
        }
        for row in parts.store.active_quarantines().await? {
            if let Some(entry) = watched.get_mut(&row.container) {
                entry.status.quarantine = Some(QuarantineState {
                    since: UnixMillis(row.since),
                    reason: row.reason,
                    snapshot_id: row.snapshot_id,
                    isolation: "incomplete: not verified since the daemon started".to_owned(),
                });
                parts.lock.set(true);
            }
        }
        super::watched::restore(&parts.store, &mut watched).await?;
        match parts.vault.recover_interrupted().await {
            Ok(recovered) if !recovered.is_empty() => {
                tracing::warn!(snapshots = ?recovered, "snapshots left unfinished by a stop were completed from what they stored (marked interrupted)");
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "unfinished snapshots not recovered"),
        }
        let responding = watched
            .keys()
            .map(|name| (name.clone(), Arc::new(AsyncMutex::new(()))))
            .collect();
        let sweep_slots = watched
            .keys()
            .map(|name| (name.clone(), Arc::new(SweepSlot::default())))
            .collect();
        let (updates, _) = broadcast::channel(WATCH_BUFFER);
        let (commands, queue) = mpsc::channel(8);
        Ok(Arc::new_cyclic(|me| Self {
            config: parts.config,
            store: parts.store,
            audit: parts.audit,
            auth: parts.auth,
            clock: parts.clock,
            vault: parts.vault,
            lock: parts.lock,
            guarded: parts.guarded,
            watched: Mutex::new(watched),
            updates,
            engine: Mutex::new(None),
            commands,
            command_queue: AsyncMutex::new(Some(queue)),
            responding,
            reisolating: Mutex::default(),
            open_findings: AsyncMutex::new(()),
            sweep_slots,
            me: me.clone(),
        }))
    }

    /// Containers whose isolation is being checked now.
    pub(super) fn reisolating(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        self.reisolating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lock one container's responses (quarantine, re-isolation, pin)
    /// take, so they never interleave; other containers are not held up.
    pub(super) async fn responding_to(
        &self,
        name: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let lock = Arc::clone(self.responding.get(name)?);
        Some(lock.lock_owned().await)
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

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &IntegrityConfig {
        &self.config
    }

    /// The snapshot vault.
    #[must_use]
    pub fn vault(&self) -> &Arc<SnapshotVault> {
        &self.vault
    }

    /// The quarantine lock.
    #[must_use]
    pub fn lock(&self) -> &QuarantineLock {
        &self.lock
    }

    /// Every container's status, in configuration order.
    #[must_use]
    pub fn status(&self) -> Vec<ContainerStatus> {
        let watched = self.watched();
        self.config
            .containers
            .iter()
            .filter_map(|profile| watched.get(&profile.name))
            .map(|entry| entry.status.clone())
            .collect()
    }

    /// Status changes and findings from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorUpdate> {
        self.updates.subscribe()
    }

    /// Findings history, newest first.
    pub async fn findings(
        &self,
        container: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FindingRow>, StoreError> {
        self.store.findings(container, limit).await
    }

    /// Sweeps every container now; returns once done (or at the timeout).
    /// It closes no finding.
    pub async fn run_checks_now(&self) -> Vec<ContainerStatus> {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::RunNow(reply)).await.is_ok() {
            let _ = tokio::time::timeout(RUN_NOW_TIMEOUT, done).await;
        }
        self.status()
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
            (!same).then(|| entry.status.clone())
        };
        if let Some(status) = changed {
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
        let limit = self.config.poll_interval() * 2;
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
