//! What the monitor keeps about one watched container, and how the open
//! event findings of each are brought back from the store at start.
//!
//! Invariant: a container's state is only ever changed under the monitor's
//! lock on the map of them; findings restored at start are the store's open
//! ones, of configured containers and known event checks only.

use std::collections::{HashMap, VecDeque};

use super::{
    baseline::Baseline,
    events,
    finding::{ContainerStatus, Finding, Severity},
    recording::Recordings,
};
use crate::{
    clock::UnixMillis,
    store::{Store, StoreError},
};

/// What the monitor knows about one container.
#[derive(Debug)]
pub struct Watched {
    pub(super) status: ContainerStatus,
    /// Findings of the latest sweep.
    pub(super) sweep_findings: Vec<Finding>,
    /// Findings from events, open until acknowledged (see `acknowledge`).
    pub(super) event_findings: Vec<Finding>,
    pub(super) baseline: Option<Baseline>,
    pub(super) recent_events: VecDeque<serde_json::Value>,
    pub(super) hashed_at: Option<UnixMillis>,
    /// Until then, lifecycle events (die, update) are occcd's own doing.
    pub(super) occcd_acting_until: Option<UnixMillis>,
    /// Why the monitor cannot see the container now, until a sweep succeeds.
    pub(super) unseen: Option<String>,
    /// What of its sweep findings went into the history, and when.
    pub(super) recordings: Recordings,
    /// When the latest sweep of it completed.
    pub(super) last_complete: Option<UnixMillis>,
    /// What sweeps keep between runs (file verdicts, executable hashes).
    pub(super) memory: super::sweep::SweepMemory,
    /// The container's id, pid, networks and execs as the latest sweep saw
    /// them (isolation starts from it, without waiting for an inspect).
    pub(super) known: Option<super::quarantine::Before>,
    /// Host folders of its writable trees, watched in real time.
    pub(super) watch_roots: Vec<std::path::PathBuf>,
}

/// Open findings restored from the store into `watched` (of configured
/// containers and known event checks only).
pub(super) async fn restore(
    store: &Store,
    watched: &mut HashMap<String, Watched>,
) -> Result<(), StoreError> {
    for row in store.open_findings().await? {
        let latest = row.latest;
        let (Some(entry), Some(check_id), Some(severity)) = (
            watched.get_mut(&latest.container),
            events::event_check(&latest.check_id),
            Severity::parse(&latest.severity),
        ) else {
            continue;
        };
        let mut finding = Finding::new(
            &latest.container,
            check_id,
            severity,
            latest.summary,
            serde_json::from_str(&latest.evidence).unwrap_or_default(),
            UnixMillis(latest.observed_at),
        );
        finding.first_seen = UnixMillis(row.first_seen);
        finding.occurrences = u32::try_from(row.occurrences).unwrap_or(u32::MAX);
        entry.event_findings.push(finding);
    }
    // Shown from the start, before the first sweep.
    for entry in watched.values_mut() {
        entry.status.findings.clone_from(&entry.event_findings);
    }
    Ok(())
}
