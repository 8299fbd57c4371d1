//! Sweeping a container: one sweep at a time per container (one more may
//! wait), its findings merged into what is known, recorded, published, and
//! handed to the response policy.
//!
//! Invariant: a container is `Seen` only after a sweep of it completed;
//! hash findings persist between hash sweeps; a finding that is new in this
//! sweep reaches the responder after it is stored.

use std::{collections::HashMap, sync::Arc};

use super::{
    config::ContainerProfile,
    engine::{Engine, EngineError},
    response::{Responder, Trigger},
    shared::{MonitorShared, Sight},
    sweep::{self, SweepPlan},
    sweep_slot::SweepSlot,
};

/// Sweeps the watched containers.
#[derive(Debug)]
pub(super) struct Sweeper {
    shared: Arc<MonitorShared>,
    responder: Arc<Responder>,
    /// Who sweeps each container next.
    slots: HashMap<String, Arc<SweepSlot>>,
}

impl Sweeper {
    pub(super) fn new(
        shared: Arc<MonitorShared>,
        responder: Arc<Responder>,
        names: &[String],
    ) -> Self {
        let slots = names
            .iter()
            .map(|name| (name.clone(), Arc::new(SweepSlot::default())))
            .collect();
        Self {
            shared,
            responder,
            slots,
        }
    }

    /// Sweeps every container; hashes when `force_hashes` or when due.
    pub(super) async fn sweep_all(&self, engine: &Engine, force_hashes: bool) {
        for profile in &self.shared.config.containers {
            self.sweep_one(engine, profile, force_hashes).await;
        }
    }

    pub(super) async fn sweep_one(
        &self,
        engine: &Engine,
        profile: &ContainerProfile,
        force_hashes: bool,
    ) {
        // One sweep of a container at a time, at most one more queued.
        let Some(slot) = self.slots.get(&profile.name) else {
            return;
        };
        let Some(turn) = slot.ask(force_hashes).await else {
            return;
        };
        let now = self.shared.clock.now();
        let (baseline, hashes, memory) = {
            let watched = self.shared.watched();
            let Some(entry) = watched.get(&profile.name) else {
                return;
            };
            let due = entry.hashed_at.is_none_or(|at| {
                now.0.saturating_sub(at.0) >= self.shared.tunables().hash_interval_millis()
            });
            (
                entry.baseline.clone(),
                turn.forced || due,
                entry.memory.clone(),
            )
        };
        let plan = SweepPlan {
            profile,
            baseline: baseline.as_ref(),
            hashes,
            max_bytes: self.shared.vault.max_bytes(),
            guarded: &self.shared.guarded,
            now,
        };
        match sweep::sweep(engine, plan, &memory).await {
            Ok(mut outcome) => {
                for (check, took) in &outcome.took {
                    self.shared.metrics.check(check, *took);
                }
                if let Some(watch) = &self.shared.openclaw_config {
                    outcome
                        .findings
                        .extend(watch.check(&profile.name, now).await);
                }
                if let Some(watch) = self
                    .shared
                    .skills
                    .as_ref()
                    .filter(|w| w.container == profile.name)
                {
                    outcome
                        .findings
                        .extend(watch.check(&self.shared.store, now).await);
                    if hashes {
                        let inside = watch.check_in_container(
                            engine,
                            &self.shared.store,
                            self.shared.vault.max_bytes(),
                            now,
                        );
                        outcome.findings.extend(inside.await);
                    }
                }
                let fresh = {
                    let mut watched = self.shared.watched();
                    let Some(entry) = watched.get_mut(&profile.name) else {
                        return;
                    };
                    entry.last_complete = Some(self.shared.clock.now());
                    entry.known = Some(outcome.known.clone());
                    entry.watch_roots.clone_from(&outcome.watch_roots);
                    if hashes {
                        entry.hashed_at = Some(now);
                    }
                    let fresh: Vec<_> = outcome
                        .findings
                        .iter()
                        .filter(|f| {
                            !entry
                                .sweep_findings
                                .iter()
                                .any(|old| old.check_id == f.check_id && old.summary == f.summary)
                        })
                        .cloned()
                        .collect();
                    // Hash findings persist between hash sweeps.
                    let kept: Vec<_> = if hashes {
                        Vec::new()
                    } else {
                        entry
                            .sweep_findings
                            .iter()
                            .filter(|f| is_hash_check(f.check_id))
                            .cloned()
                            .collect()
                    };
                    entry.sweep_findings = outcome.findings;
                    entry.sweep_findings.extend(kept);
                    let spacing = self.shared.tunables().poll_interval_millis();
                    let recorded = entry
                        .recordings
                        .to_record(&entry.sweep_findings, now, spacing);
                    (fresh, recorded)
                };
                let (fresh, recorded) = fresh;
                self.shared.publish_findings(&recorded).await;
                self.shared.refresh(&profile.name, Sight::Seen);
                let trigger = Trigger {
                    since: std::time::Instant::now(),
                    exec_id: None,
                };
                self.responder
                    .respond(engine, profile, &fresh, &trigger)
                    .await;
            }
            Err(EngineError::NotFound(_)) => {
                self.shared.refresh(
                    &profile.name,
                    Sight::Blind(&format!(
                        "container {} not found at the engine",
                        profile.name
                    )),
                );
            }
            Err(err) => self
                .shared
                .refresh(&profile.name, Sight::Blind(&err.to_string())),
        }
    }
}

fn is_hash_check(check_id: &str) -> bool {
    matches!(
        check_id,
        "files.critical_hash"
            | "host.file_changed"
            | "host.file_not_regular"
            | "skills.container_unapproved"
    )
}
