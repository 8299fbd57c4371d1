//! The integrity monitor: a thin front over its flows — watching (the loop
//! that sweeps and follows engine events), response (quarantine,
//! re-isolation, release, pinning) and environment control — each its own
//! type over the shared state; and what callers may ask of it: status, a
//! watch of changes, findings history, run checks now.
//!
//! Invariant: the quarantine lock mirrors the stored unreleased quarantines
//! from the moment the monitor exists; the front adds no behaviour of its
//! own beyond composing flows.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Mutex as AsyncMutex, broadcast, mpsc, watch};

pub use super::shared::MonitorUpdate;
use super::{
    baseline::Baseline,
    config::IntegrityConfig,
    control::EnvironmentControl,
    error::IntegrityError,
    finding::{ContainerStatus, QuarantineState},
    quarantine::QuarantineLock,
    recording::Recordings,
    response::Responder,
    shared::MonitorShared,
    snapshot::SnapshotVault,
    tunables::{Heartbeat, Tunables},
    watched::Watched,
    watcher::Watcher,
};
use crate::{
    audit::{Actor, AuditLog},
    auth::AuthEngine,
    clock::{Clock, UnixMillis},
    store::{FindingRow, ReadCopy, Store, StoreError},
};

/// Changes buffered per watcher before it lags.
const WATCH_BUFFER: usize = 256;

/// The integrity monitor (cheap to share).
#[derive(Debug)]
pub struct IntegrityMonitor {
    shared: Arc<MonitorShared>,
    watcher: Arc<Watcher>,
    responder: Arc<Responder>,
    environment: EnvironmentControl,
    /// The last findings list answered: (container, limit, rows), under the
    /// store's findings version.
    listed_findings: ReadCopy<FindingsAnswer>,
}

/// One ListFindings answer: the container and limit it was for, its rows.
type FindingsAnswer = (Option<String>, u32, Arc<Vec<FindingRow>>);

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
    /// Skills folders to hold to the approved set, if any.
    pub skills: Option<super::skill_check::SkillsWatch>,
    /// OpenClaw config files to hold to their accepted versions, if any.
    pub openclaw_config: Option<super::config_check::ConfigWatch>,
    /// Check durations and isolation latency, for Prometheus.
    pub metrics: Arc<crate::metrics::Metrics>,
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
        let names: Vec<String> = watched.keys().cloned().collect();
        let (updates, _) = broadcast::channel(WATCH_BUFFER);
        let (commands, queue) = mpsc::channel(8);
        let (tunables, _) = watch::channel(Tunables::of(&parts.config));
        let shared = Arc::new(MonitorShared {
            tunables,
            heartbeat: Heartbeat::default(),
            config: parts.config,
            store: parts.store,
            audit: parts.audit,
            clock: parts.clock,
            vault: parts.vault,
            lock: parts.lock,
            guarded: parts.guarded,
            watched: Mutex::new(watched),
            updates,
            engine: Mutex::new(None),
            commands,
            open_findings: AsyncMutex::new(()),
            skills: parts.skills,
            openclaw_config: parts.openclaw_config,
            metrics: parts.metrics,
        });
        let responder = Responder::new(Arc::clone(&shared), parts.auth, &names);
        let watcher = Watcher::new(Arc::clone(&shared), Arc::clone(&responder), queue, &names);
        Ok(Arc::new(Self {
            listed_findings: ReadCopy::default(),
            environment: EnvironmentControl::new(Arc::clone(&shared)),
            shared,
            watcher,
            responder,
        }))
    }

    /// Applies the reloadable part of `config` (intervals, response and
    /// start policy) from the next decision on; true when anything changed.
    pub fn retune(&self, config: &IntegrityConfig) -> bool {
        self.shared.tunables.send_if_modified(|current| {
            let wanted = Tunables::of(config);
            let changed = *current != wanted;
            *current = wanted;
            changed
        })
    }

    /// When the watch loop last went round, and how long it may go without
    /// one before it counts as wedged: a minute, whatever the poll interval
    /// (the loop goes round at every engine ping, 2 s, or reconnection
    /// wait, at most 5 s, and beats while an event's response runs).
    #[must_use]
    pub fn heartbeat(&self) -> (Option<UnixMillis>, Duration) {
        (self.shared.heartbeat.last(), Duration::from_secs(60))
    }

    /// Whether the monitor has a live engine connection.
    #[must_use]
    pub fn engine_connected(&self) -> bool {
        self.shared.engine().is_some()
    }

    /// Runs the watch loop until the daemon stops.
    pub async fn run(self: Arc<Self>) {
        Arc::clone(&self.watcher).run().await;
    }

    /// Quarantine release and baseline pinning.
    #[must_use]
    pub fn response(&self) -> &Responder {
        &self.responder
    }

    /// Start, stop, restart, state and logs of the watched containers.
    #[must_use]
    pub fn environment(&self) -> &EnvironmentControl {
        &self.environment
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &IntegrityConfig {
        &self.shared.config
    }

    /// The snapshot vault.
    #[must_use]
    pub fn vault(&self) -> &Arc<SnapshotVault> {
        &self.shared.vault
    }

    /// The quarantine lock.
    #[must_use]
    pub fn lock(&self) -> &QuarantineLock {
        &self.shared.lock
    }

    /// Every container's status, in configuration order.
    #[must_use]
    pub fn status(&self) -> Vec<ContainerStatus> {
        self.shared.status()
    }

    /// Status changes and findings from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorUpdate> {
        self.shared.updates.subscribe()
    }

    /// Findings history, newest first; the same question asked again while
    /// no finding was recorded or acknowledged is answered from memory.
    pub async fn findings(
        &self,
        container: Option<&str>,
        limit: u32,
    ) -> Result<Arc<Vec<FindingRow>>, StoreError> {
        // Read the version first: a write that ends after it changes it.
        let version = self.shared.store.findings_version();
        if let Some((asked_for, asked_limit, rows)) = self.listed_findings.get(version)
            && asked_for.as_deref() == container
            && asked_limit == limit
        {
            return Ok(rows);
        }
        let rows = Arc::new(self.shared.store.findings(container, limit).await?);
        let answer = (container.map(str::to_owned), limit, Arc::clone(&rows));
        self.listed_findings.put(version, answer);
        Ok(rows)
    }

    /// Closes the open event findings `check_ids` of `container` (the
    /// caller is an elevated admin: the gate checked).
    pub async fn acknowledge(
        &self,
        actor: Actor,
        container: &str,
        check_ids: &[String],
        note: &str,
    ) -> Result<Vec<ContainerStatus>, IntegrityError> {
        self.shared
            .acknowledge(actor, container, check_ids, note)
            .await
    }

    /// Sweeps every container now; returns once done (or at the timeout).
    /// It closes no finding. Refused when the monitor is off.
    pub async fn run_checks_now(&self) -> Result<Vec<ContainerStatus>, IntegrityError> {
        self.shared.run_checks_now().await
    }
}
