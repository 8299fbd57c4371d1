//! The compromise response and the operations that change the monitor's
//! trust: quarantine, release, baseline pinning.
//!
//! Invariant: quarantine isolates the container first (pause, networks,
//! restart policy at once, then verified), captures its frozen processes,
//! revokes every session and locks sensitive operations, then stores the
//! rest of the evidence; only an elevated super-admin with a note releases
//! it; every step is audited.

use std::{
    collections::HashMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::json;
use tokio::sync::Mutex as AsyncMutex;

use super::{
    baseline::Baseline,
    config::ContainerProfile,
    engine::Engine,
    error::{IntegrityError, checked_note},
    evidence,
    finding::{ContainerStatus, Finding, QuarantineState},
    quarantine,
    rechecks::Rechecks,
    shared::{MonitorShared, Sight},
    snapshot::new_snapshot_id,
};
use crate::{
    audit::{Actor, IntegrityAction},
    auth::AuthEngine,
    clock::UnixMillis,
    store::QuarantineRow,
};

/// What set a response off.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// When the event (or sweep result) arrived.
    pub since: std::time::Instant,
    /// The exec an exec event named, to let it settle before pausing.
    pub exec_id: Option<String>,
}

/// The compromise response: quarantine and re-isolation (started by the
/// watcher), release and baseline pinning (asked for by people).
#[derive(Debug)]
pub struct Responder {
    shared: Arc<MonitorShared>,
    /// Sessions to revoke on compromise.
    auth: Arc<AuthEngine>,
    /// Held while a container is responded to (quarantine, re-isolation,
    /// pin), one per container.
    responding: HashMap<String, Arc<AsyncMutex<()>>>,
    /// Containers whose isolation is being checked now.
    reisolating: Rechecks,
    /// Quarantines decided but not yet stored (they hold the lock too).
    quarantining: AtomicUsize,
    /// This responder, for the snapshot tasks it spawns.
    me: Weak<Self>,
}

/// Longest the first isolation of a quarantine may take (each engine call
/// is bounded too; this bounds the verify rounds together), so a response
/// stays well inside what the service watchdog allows (see `watcher`).
const ISOLATION_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

/// Counts a decided quarantine until its response ends (on every path).
struct Decided<'a>(&'a AtomicUsize);

impl Drop for Decided<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Responder {
    pub(super) fn new(
        shared: Arc<MonitorShared>,
        auth: Arc<AuthEngine>,
        names: &[String],
    ) -> Arc<Self> {
        let responding = names
            .iter()
            .map(|name| (name.clone(), Arc::new(AsyncMutex::new(()))))
            .collect();
        Arc::new_cyclic(|me| Self {
            shared,
            auth,
            responding,
            quarantining: AtomicUsize::new(0),
            reisolating: Rechecks::default(),
            me: me.clone(),
        })
    }

    /// Containers whose isolation is being checked now.
    pub(super) fn reisolating(&self) -> &Rechecks {
        &self.reisolating
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

    /// Applies the response policy to new findings.
    pub(super) async fn respond(
        &self,
        engine: &Engine,
        profile: &ContainerProfile,
        fresh: &[super::finding::Finding],
        trigger: &Trigger,
    ) {
        let policy = self.shared.tunables().response;
        let worst = fresh
            .iter()
            .filter(|f| policy.for_severity(f.severity) == super::config::Response::Quarantine)
            .max_by_key(|f| f.severity);
        if let Some(finding) = worst {
            self.quarantine(engine, profile, finding, trigger).await;
        }
    }

    /// Quarantines `profile`'s container because of `finding`: locks first,
    /// isolates it (from what the latest sweep saw, then verified by
    /// inspect), captures its frozen processes and inspect, stores the
    /// quarantine, revokes every session once watchers saw the status,
    /// audits, and writes the snapshot beside.
    pub(super) async fn quarantine(
        &self,
        engine: &Engine,
        profile: &ContainerProfile,
        finding: &Finding,
        trigger: &Trigger,
    ) {
        let name = profile.name.as_str();
        // Events and sweeps may both find the compromise: one responds.
        let Some(_responding) = self.responding_to(name).await else {
            return;
        };
        let mut known = {
            let mut watched = self.shared.watched();
            let Some(entry) = watched.get_mut(name) else {
                return;
            };
            if entry.status.quarantine.is_some() {
                return;
            }
            // The isolation's own events (pause, update) are not findings.
            let window =
                i64::try_from(super::control::ACTING_WINDOW.as_millis()).unwrap_or(i64::MAX);
            entry.occcd_acting_until =
                Some(UnixMillis(self.shared.clock.now().0.saturating_add(window)));
            entry.known.clone().unwrap_or_default()
        };
        known.exec_ids.extend(trigger.exec_id.iter().cloned());
        // Locked at the decision, before the slow steps (isolation and
        // evidence take seconds against a slow engine): no sensitive
        // operation races the quarantine. Sessions end once watchers have
        // seen the quarantined status (below).
        self.shared.lock.set(true);
        self.quarantining.fetch_add(1, Ordering::SeqCst);
        let _decided = Decided(&self.quarantining);
        // Bounded as a whole: what is not isolated by then is left to the
        // re-isolation at every poll (the status says "incomplete").
        let isolation = match tokio::time::timeout(
            ISOLATION_BUDGET,
            quarantine::isolate(engine, name, &known, trigger.since),
        )
        .await
        {
            Ok(report) => report,
            Err(_) => quarantine::IsolationReport {
                errors: vec![format!(
                    "isolation unfinished after {} s; re-isolation goes on at every poll",
                    ISOLATION_BUDGET.as_secs()
                )],
                ..quarantine::IsolationReport::default()
            },
        };
        let timings = &isolation.timings;
        for (step, after_ms) in [
            ("links_cut", timings.links_cut_ms),
            ("paused", timings.paused_ms),
            ("verified", timings.verified_ms),
        ] {
            if let Some(after_ms) = after_ms {
                let after = std::time::Duration::from_millis(after_ms);
                self.shared.metrics.isolation_step(step, after);
            }
        }
        // Frozen now: the processes and inspect are what isolation stopped.
        let volatile = evidence::volatile(engine, name, self.shared.clock.as_ref()).await;
        let snapshot_id = match new_snapshot_id() {
            Ok(id) => id,
            Err(err) => {
                tracing::error!(error = %err, "no snapshot id");
                "snap_unavailable".to_owned()
            }
        };
        let now = self.shared.clock.now();
        let reason = format!("{} ({})", finding.summary, finding.check_id);
        let row = QuarantineRow {
            container: name.to_owned(),
            since: now.0,
            reason: reason.clone(),
            snapshot_id: snapshot_id.clone(),
        };
        if let Err(err) = self.shared.store.start_quarantine(&row).await {
            tracing::error!(error = %err, "quarantine not stored; it holds until restart");
        }
        if let Some(entry) = self.shared.watched().get_mut(name) {
            entry.status.quarantine = Some(QuarantineState {
                since: now,
                reason: reason.clone(),
                snapshot_id: snapshot_id.clone(),
                isolation: isolation.state(),
            });
        }
        self.shared.refresh(name, Sight::Same);
        let revoked = match self
            .auth
            .revoke_all_sessions(&format!("{name} quarantined"))
            .await
        {
            Ok(count) => json!(count),
            Err(err) => json!(format!("failed: {err}")),
        };
        let detail = json!({
            "finding": finding.check_id,
            "summary": finding.summary,
            "isolation": isolation,
            "sessions_revoked": revoked,
            "snapshot_id": snapshot_id,
        });
        self.shared
            .record(
                Actor::daemon(),
                IntegrityAction::QuarantineStarted,
                name,
                detail.to_string(),
            )
            .await;
        // The rest of the evidence is slow (and a wedged engine makes it
        // slower): gather it beside the monitor, not in its way.
        if let Some(monitor) = self.me.upgrade() {
            let (engine, profile) = (engine.clone(), profile.clone());
            tokio::spawn(async move {
                monitor
                    .write_snapshot(&engine, &profile, &snapshot_id, &reason, volatile)
                    .await;
            });
        }
    }

    /// Checks (and fixes) the isolation of a quarantined container: at every
    /// poll, and when an event may have undone it; audited when anything
    /// had to be fixed or the state changed.
    pub(super) async fn reisolate(&self, engine: &Engine, name: &str, why: &str) {
        let Some(_responding) = self.responding_to(name).await else {
            return;
        };
        let mut report = quarantine::IsolationReport::default();
        quarantine::verify(engine, name, &mut report, std::time::Instant::now()).await;
        let changed = {
            let mut watched = self.shared.watched();
            let Some(quarantine) = watched
                .get_mut(name)
                .and_then(|entry| entry.status.quarantine.as_mut())
            else {
                return;
            };
            let state = report.state();
            let changed = quarantine.isolation != state;
            quarantine.isolation = state;
            changed
        };
        self.shared.refresh(name, Sight::Same);
        let fixed = report.verified && report.rounds > 1;
        if changed || fixed || !report.networks_disconnected.is_empty() {
            self.shared
                .record(
                    Actor::daemon(),
                    IntegrityAction::IsolationChecked,
                    name,
                    json!({ "why": why, "isolation": report }).to_string(),
                )
                .await;
        }
    }

    /// Gathers the rest of the evidence, streaming it into the snapshot.
    async fn write_snapshot(
        &self,
        engine: &Engine,
        profile: &ContainerProfile,
        snapshot_id: &str,
        reason: &str,
        volatile: Vec<super::snapshot::Artifact>,
    ) {
        let name = profile.name.as_str();
        let recent: Vec<serde_json::Value> = self
            .shared
            .watched()
            .get(name)
            .map(|entry| entry.recent_events.iter().cloned().collect())
            .unwrap_or_default();
        let written = async {
            let mut snapshot = self
                .shared
                .vault
                .begin(snapshot_id, name, reason, self.shared.clock.now())
                .await?;
            for artifact in volatile {
                snapshot.add(artifact).await?;
            }
            evidence::rest(
                engine,
                profile,
                &recent,
                &mut snapshot,
                self.shared.clock.as_ref(),
            )
            .await?;
            snapshot.finish().await
        };
        match written.await {
            Ok(manifest) => {
                let detail = json!({
                    "snapshot_id": snapshot_id,
                    "artifacts": manifest.artifacts.len(),
                    "bytes": manifest.total_bytes(),
                    "partial": manifest.artifacts.iter().filter(|a| a.partial).map(|a| &a.name).collect::<Vec<_>>(),
                    "truncated": manifest.truncated,
                });
                self.shared
                    .record(
                        Actor::daemon(),
                        IntegrityAction::SnapshotWritten,
                        name,
                        detail.to_string(),
                    )
                    .await;
            }
            Err(err) => {
                tracing::error!(error = %err, "forensic snapshot not stored");
                self.shared
                    .record(
                        Actor::daemon(),
                        IntegrityAction::SnapshotFailed,
                        name,
                        err.to_string(),
                    )
                    .await;
            }
        }
    }

    /// Ends the quarantine of `container` (the caller is an elevated
    /// super-admin: the gate checked).
    pub async fn release(
        &self,
        actor: Actor,
        container: &str,
        note: &str,
    ) -> Result<Vec<ContainerStatus>, IntegrityError> {
        let note = checked_note(note, "say why it is safe to release")?;
        let name = self.shared.profile(container)?.name.clone();
        let by = actor.user.clone().unwrap_or_default();
        if !self
            .shared
            .store
            .release_quarantine(&name, &by, note, self.shared.clock.now().0)
            .await?
        {
            return Err(IntegrityError::NotQuarantined(name));
        }
        if let Some(entry) = self.shared.watched().get_mut(&name) {
            entry.status.quarantine = None;
        }
        let closed = self
            .shared
            .close_all(&name, &by, &format!("quarantine released: {note}"))
            .await;
        // A quarantine decided for another container but not stored yet
        // keeps the lock too.
        let still = self
            .shared
            .watched()
            .values()
            .any(|entry| entry.status.quarantine.is_some())
            || self.quarantining.load(Ordering::SeqCst) > 0;
        self.shared.lock.set(still);
        self.shared.refresh(&name, Sight::Same);
        self.shared
            .record(
                actor,
                IntegrityAction::QuarantineReleased,
                &name,
                json!({ "note": note, "findings_closed": closed }).to_string(),
            )
            .await;
        Ok(self.shared.status())
    }

    /// Pins the current state of `container` as trusted.
    pub async fn pin_baseline(
        &self,
        actor: Actor,
        container: &str,
    ) -> Result<Baseline, IntegrityError> {
        let profile = self.shared.profile(container)?.clone();
        let engine = self.shared.connected()?;
        let by = actor.user.clone().unwrap_or_default();
        let pinned = super::pin::pin(
            &engine,
            &profile,
            &by,
            self.shared.vault.max_bytes(),
            self.shared.clock.now(),
        )
        .await?;
        {
            // A quarantine that began while the state was read wins: what
            // was read may be the compromise itself.
            let _no_response_running = self.responding_to(&profile.name).await;
            if self.shared.lock.is_locked() {
                return Err(IntegrityError::Refused(
                    "a quarantine began while the baseline was being read; nothing was pinned"
                        .to_owned(),
                ));
            }
            self.shared.store.save_baseline(&pinned.to_row()).await?;
            if let Some(entry) = self.shared.watched().get_mut(&profile.name) {
                entry.baseline = Some(pinned.clone());
                entry.hashed_at = None;
            }
        }
        let detail = format!(
            "image {}; {} image files, {} host files",
            pinned.image_id,
            pinned.image_files.len(),
            pinned.host_files.len()
        );
        self.shared
            .record(
                actor,
                IntegrityAction::BaselinePinned,
                &profile.name,
                detail,
            )
            .await;
        // The pin is kept either way; with the monitor off nothing sweeps.
        let _ = self.shared.run_checks_now().await;
        Ok(pinned)
    }
}
