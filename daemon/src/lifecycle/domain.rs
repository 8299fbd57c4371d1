//! Phase two: the domain — audit log, authentication, the integrity
//! monitor (and, as they land, skills, OpenClaw config, event outputs,
//! metrics) — started as one value and shut down in reverse order.
//!
//! Invariant: the master key is dropped as soon as every domain has derived
//! its subkeys, before anything slow (reading stored state) runs; the
//! monitor stops once the server takes no new calls; after the calls in
//! flight, shutdown writes sessions' last-seen times, audits the stop,
//! drains the audit queue and closes the store (WAL checkpointed) — in that
//! order. Dropped without a shutdown (a failed start), its tasks end.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::task::JoinHandle;

use super::{StartupError, unlock::UnlockedStore};
use crate::{
    audit::{
        Actor, AuditEvent, AuditLog, AuditWriter, ChainHasher,
        checkpoint::{CheckpointSigner, checkpoint_head, sign_periodically},
    },
    auth::AuthEngine,
    clock::{Clock, UnixMillis},
    config::Config,
    crypto::{KeyPurpose, KeyRing, KeySource, Sealer},
    gate::RefusalBudget,
    integrity::{
        IntegrityMonitor, MonitorParts, QuarantineLock, config_check::ConfigWatch,
        mounts::GuardedPaths, skill_check::SkillsWatch, snapshot::SnapshotVault,
    },
    metrics::{Metrics, Sampled, SampledContainer},
    openclaw::{ConfigEditor, config::OpenClawConfig, editor::EditorParts, versions::Versioner},
    skills::SkillGovernance,
    store::Store,
};

/// How often sessions' last-seen times are written while serving.
const PERSIST_SESSIONS_EVERY: Duration = Duration::from_secs(60);

/// The running domain: what the RPC services are built on.
#[derive(Debug)]
pub struct Domain {
    /// The store every domain writes to.
    pub store: Store,
    /// The audit log.
    pub audit: AuditLog,
    /// Its chain hasher (for `VerifyChain`).
    pub hasher: Arc<ChainHasher>,
    /// Signs checkpoints of the chain and exports.
    pub checkpoints: Arc<CheckpointSigner>,
    /// Authentication and sessions.
    pub auth: Arc<AuthEngine>,
    /// The integrity monitor.
    pub monitor: Arc<IntegrityMonitor>,
    /// Skill governance.
    pub skills: Arc<SkillGovernance>,
    /// OpenClaw's config editor.
    pub openclaw_config: Arc<ConfigEditor>,
    /// Held while any container is quarantined.
    pub lock: QuarantineLock,
    /// Backups handed out over the socket.
    pub backups: Arc<crate::backup::BackupSource>,
    /// Where the master key came from.
    pub key_source: KeySource,
    /// What is counted for Prometheus.
    pub metrics: Arc<Metrics>,
    /// Refused calls audited per peer uid and minute.
    pub refusals: Arc<RefusalBudget>,
    audit_writer: Option<AuditWriter>,
    events: Option<crate::events::Outputs>,
    monitor_task: Option<JoinHandle<()>>,
    session_writer: Option<JoinHandle<()>>,
    checkpoint_task: Option<JoinHandle<()>>,
    /// The audit-gap entry waiting to commit, if any.
    gap_entry: Option<JoinHandle<()>>,
    clock: Arc<dyn Clock>,
}

impl Drop for Domain {
    fn drop(&mut self) {
        // Shut down or not, no task of it outlives it.
        for task in [
            self.monitor_task.take(),
            self.session_writer.take(),
            self.checkpoint_task.take(),
            self.gap_entry.take(),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
        }
    }
}

impl Domain {
    /// Starts every domain on the unlocked store; the master key is gone
    /// when this returns.
    pub async fn start(
        config: &Config,
        clock: &Arc<dyn Clock>,
        unlocked: UnlockedStore,
    ) -> Result<Self, StartupError> {
        let UnlockedStore {
            store,
            keys,
            key_source,
        } = unlocked;
        let hasher = Arc::new(ChainHasher::new(&keys.derive(KeyPurpose::AuditChain)));
        let checkpoints = Arc::new(CheckpointSigner::new(
            &keys.derive(KeyPurpose::AuditCheckpoints),
            Arc::clone(&hasher),
        )?);
        let metrics = Arc::new(Metrics::default());
        let (audit, audit_writer) = AuditLog::start(
            store.clone(),
            Arc::clone(&hasher),
            Arc::clone(clock),
            config.audit.write_timeout(),
            config.audit.queue_capacity,
            Arc::clone(&metrics),
        )
        .await?;
        let events = crate::events::Outputs::start(&config.events, &store, &audit, clock, &metrics)
            .map_err(StartupError::Events)?;
        let auth = start_auth(config, &store, &keys, &audit, clock).await?;
        let skills = start_skills(config, &store, &audit, clock)?;
        let lock = QuarantineLock::default();
        let vault = evidence_vault(config, &keys, &store)?;
        let openclaw_config = config_editor(config, &keys, &store, &audit, clock, &lock)?;
        let backups = Arc::new(crate::backup::BackupSource::new(
            store.clone(),
            keys.derive(KeyPurpose::Database),
            Arc::clone(&checkpoints),
            Arc::clone(clock),
            config.store.database.clone(),
        ));
        drop(keys);
        openclaw_config
            .import_at_start()
            .await
            .map_err(StartupError::OpenClawConfig)?;
        let parts = MonitorParts {
            config: config.integrity.clone(),
            store: store.clone(),
            audit: audit.clone(),
            auth: Arc::clone(&auth),
            clock: Arc::clone(clock),
            vault,
            lock: lock.clone(),
            guarded: guarded_paths(config),
            skills: skills_watch(config, &skills),
            openclaw_config: (!openclaw_config.targets().all().is_empty()).then(|| ConfigWatch {
                editor: Arc::clone(&openclaw_config),
            }),
            metrics: Arc::clone(&metrics),
        };
        let monitor = IntegrityMonitor::new(parts)
            .await
            .map_err(StartupError::IntegrityState)?;
        let monitor_task = config
            .integrity
            .enabled
            .then(|| tokio::spawn(Arc::clone(&monitor).run()));
        let session_writer = Some(tokio::spawn(write_sessions_periodically(Arc::clone(&auth))));
        let checkpoint_task = Some(tokio::spawn(sign_periodically(
            store.clone(),
            Arc::clone(&checkpoints),
            Arc::clone(clock),
            config.audit.checkpoint_interval(),
        )));
        Ok(Self {
            store,
            audit,
            hasher,
            checkpoints,
            auth,
            monitor,
            skills,
            openclaw_config,
            lock,
            backups,
            key_source,
            metrics,
            refusals: Arc::new(RefusalBudget::new(config.audit.refusals_per_minute_per_uid)),
            audit_writer: Some(audit_writer),
            events,
            monitor_task,
            session_writer,
            checkpoint_task,
            gap_entry: None,
            clock: Arc::clone(clock),
        })
    }

    /// Audits the start; the daemon is ready after this.
    pub async fn announce_started(&self) -> Result<(), StartupError> {
        let started = AuditEvent::DaemonStarted {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            key_source: self.key_source.to_string(),
        };
        self.audit.record(Actor::daemon(), started).await?;
        Ok(())
    }

    /// Checks the moving parts the service watchdog vouches for, the store
    /// with a query (up to [`super::supervision::STORE_PATIENCE`]).
    pub async fn probe(&self, ready_at: UnixMillis) -> super::supervision::Probe {
        let store = self.store.ping(super::supervision::STORE_PATIENCE).await;
        self.quick_probe(ready_at, store)
    }

    /// [`Self::probe`] from memory alone, taking the store's last answer as
    /// given: it never waits.
    #[must_use]
    pub fn quick_probe(
        &self,
        ready_at: UnixMillis,
        store: Result<(), String>,
    ) -> super::supervision::Probe {
        let (audit_running, audit_committing_since) = self
            .audit_writer
            .as_ref()
            .map_or((false, None), AuditWriter::pulse);
        let monitor = match &self.monitor_task {
            Some(task) if task.is_finished() => Some((None, Duration::ZERO)),
            Some(_) => Some(self.monitor.heartbeat()),
            None => None,
        };
        super::supervision::Probe {
            store,
            audit_running,
            audit_committing_since,
            audit_failing_since: self
                .audit_writer
                .as_ref()
                .and_then(AuditWriter::failing_since),
            engine_connected: self
                .monitor_task
                .as_ref()
                .map(|_| self.monitor.engine_connected()),
            monitor,
            ready_at,
        }
    }

    /// While the audit log cannot commit, asks it to record the gap (at
    /// most one such entry waiting at a time): when it commits, the log
    /// commits again — and says since when it could not.
    pub fn record_audit_gap(&mut self) {
        let Some(since) = self
            .audit_writer
            .as_ref()
            .and_then(AuditWriter::failing_since)
        else {
            return;
        };
        if self
            .gap_entry
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        let audit = self.audit.clone();
        self.gap_entry = Some(tokio::spawn(async move {
            let gap = AuditEvent::AuditGap {
                since_unix_ms: since.0,
            };
            // A failure is the writer's to report (and logged here).
            audit.record_or_log(Actor::daemon(), gap).await;
        }));
    }

    /// Stops the monitor at once: no new response begins while serving ends.
    pub fn stop_monitoring(&mut self) {
        if let Some(task) = self.monitor_task.take() {
            task.abort();
        }
    }

    /// Shuts every domain down, in reverse order, after the server stopped; writers end first.
    pub async fn shut_down(mut self, reason: String) {
        self.stop_monitoring();
        for task in [
            self.session_writer.take(),
            self.checkpoint_task.take(),
            self.gap_entry.take(),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
            let _ = task.await;
        }
        self.auth.persist_sessions().await;
        self.audit
            .record_or_log(Actor::daemon(), AuditEvent::DaemonStopped { reason })
            .await;
        // The writer ends even while handles of the log are alive.
        if let Some(writer) = self.audit_writer.take() {
            writer.finish().await;
        }
        // The last entries (the stop among them) end under a signature.
        if let Err(err) = checkpoint_head(&self.store, &self.checkpoints, self.clock.as_ref()).await
        {
            tracing::error!(error = %err, "final audit checkpoint could not be signed");
        }
        if let Some(events) = self.events.take() {
            events.finish(EVENTS_GRACE).await;
        }
        self.store.close().await;
    }
}

/// How long event outputs may take at shutdown to deliver the last entries.
const EVENTS_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The folder of the database: state files live beside it.
fn state_dir(config: &Config) -> PathBuf {
    config
        .store
        .database
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The vault forensic snapshots are sealed into (its keys derived now).
fn evidence_vault(
    config: &Config,
    keys: &KeyRing,
    store: &Store,
) -> Result<Arc<SnapshotVault>, StartupError> {
    let sealer = Sealer::new(&keys.derive(KeyPurpose::Sealing)).map_err(StartupError::Sealing)?;
    Ok(Arc::new(SnapshotVault::new(
        store.clone(),
        Arc::new(sealer),
        &keys.derive(KeyPurpose::Snapshots),
        config.integrity.snapshot_max_bytes,
    )))
}

/// OpenClaw's config editor, sealing and naming versions with keys derived
/// now.
fn config_editor(
    config: &Config,
    keys: &KeyRing,
    store: &Store,
    audit: &AuditLog,
    clock: &Arc<dyn Clock>,
    lock: &QuarantineLock,
) -> Result<Arc<ConfigEditor>, StartupError> {
    let sealer = Sealer::new(&keys.derive(KeyPurpose::Sealing)).map_err(StartupError::Sealing)?;
    Ok(Arc::new(ConfigEditor::new(EditorParts {
        store: store.clone(),
        audit: audit.clone(),
        clock: Arc::clone(clock),
        sealer: Arc::new(sealer),
        versioner: Arc::new(Versioner::new(&keys.derive(KeyPurpose::ConfigVersions))),
        targets: OpenClawConfig::targets(&config.integrity.containers),
        versions_kept: config.openclaw.versions_kept,
        quarantine: lock.clone(),
    })))
}

/// Authentication, with its keys derived from `keys`.
async fn start_auth(
    config: &Config,
    store: &Store,
    keys: &KeyRing,
    audit: &AuditLog,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<AuthEngine>, StartupError> {
    let auth = AuthEngine::start(
        store.clone(),
        keys,
        audit.clone(),
        Arc::clone(clock),
        &config.auth,
        state_dir(config),
    )
    .await
    .map_err(StartupError::Auth)?;
    Ok(Arc::new(auth))
}

/// Skill governance, its copies of skills in the state folder.
fn start_skills(
    config: &Config,
    store: &Store,
    audit: &AuditLog,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<SkillGovernance>, StartupError> {
    let skills = SkillGovernance::new(
        store.clone(),
        audit.clone(),
        Arc::clone(clock),
        &config.skills,
        state_dir(config),
    )
    .map_err(StartupError::Skills)?;
    Ok(Arc::new(skills))
}

/// What no container may reach through a mount: the engine's socket and
/// occcd's own state.
fn guarded_paths(config: &Config) -> GuardedPaths {
    GuardedPaths {
        engine_socket: config.integrity.docker_socket.clone(),
        daemon_state: [
            config.store.database.parent().map(Path::to_path_buf),
            Some(config.store.key_file.clone()),
            Some(config.socket.path.clone()),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// The skills check the monitor runs with the sweep of `skills.container`
/// (the first watched container by default); none without skills folders.
fn skills_watch(config: &Config, skills: &SkillGovernance) -> Option<SkillsWatch> {
    let dirs = config.skills.enforced_dirs();
    let container = config
        .skills
        .container
        .clone()
        .or_else(|| config.integrity.containers.first().map(|c| c.name.clone()))?;
    let container_dirs = config.skills.container_dirs.clone();
    (!dirs.is_empty() || !container_dirs.is_empty()).then(|| SkillsWatch {
        dirs,
        container_dirs,
        container,
        install_lock: skills.install_lock(),
        limits: config.skills.limits(),
    })
}

/// Writes sessions' last-seen times every [`PERSIST_SESSIONS_EVERY`], so a
/// crash loses at most that much of them.
async fn write_sessions_periodically(auth: Arc<AuthEngine>) {
    let mut every = tokio::time::interval(PERSIST_SESSIONS_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        auth.persist_sessions().await;
    }
}

/// What a scrape reads from the daemon's state (besides the counters):
/// live sessions by role, watched containers, the audit queue — from
/// shared handles (the metrics listener keeps clones of them).
#[must_use]
pub fn sample(
    auth: &AuthEngine,
    monitor: &IntegrityMonitor,
    audit: &AuditLog,
    now: UnixMillis,
) -> Sampled {
    let live = auth.sessions().live(None, now);
    let sessions_by_role = crate::auth::role::Role::ALL
        .iter()
        .map(|role| {
            let count = live.iter().filter(|session| session.role == *role).count();
            (role.as_str(), count as u64)
        })
        .collect();
    let containers = monitor
        .status()
        .into_iter()
        .map(|status| SampledContainer {
            state: status.health.as_str(),
            quarantined: status.quarantine.is_some(),
            findings: crate::integrity::finding::Severity::ALL
                .iter()
                .map(|severity| {
                    let count = status
                        .findings
                        .iter()
                        .filter(|finding| finding.severity == *severity)
                        .count();
                    (severity.as_str(), count as u64)
                })
                .collect(),
            name: status.container,
        })
        .collect();
    Sampled {
        sessions_by_role,
        containers,
        services: Vec::new(),
        audit_queue: audit.queued() as u64,
        audit_head: *audit.committed_head().borrow(),
    }
}
