//! What occcd counts for Prometheus: calls by method and code with their
//! latency, audit entries by kind (logins, lockouts, quarantines, …) and
//! commit latency — and, read when scraped, sessions by role, containers
//! by state and each service's health.
//!
//! Invariant: no label holds a secret, a username or anything a caller
//! chose — methods are the policy table's (anything else is `other`), codes
//! gRPC's seventeen, kinds the audit log's fixed names, roles the four,
//! containers the configured ones; so the number of series is bounded by
//! configuration, not by callers. Recording is a counter bump under a short
//! lock, never I/O.

pub mod config;
pub mod exposition;
mod histogram;

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

pub use config::MetricsConfig;
pub use histogram::Histogram;

/// Buckets of call latency, in seconds (0.5 ms … 10 s).
pub const CALL_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of audit commit latency, in seconds (0.1 ms … 5 s).
pub const COMMIT_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 5.0,
];

/// Buckets of check and isolation durations, in seconds (1 ms … 60 s).
pub const STEP_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0, 60.0,
];

/// gRPC's codes by number, as label values.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The label of gRPC code `code` (an unknown number is `UNKNOWN`).
#[must_use]
pub fn code_name(code: u32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|index| CODES.get(index))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// The counters occcd keeps while it runs (they start at zero each start).
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    audit_entries: Mutex<BTreeMap<&'static str, u64>>,
    audit_lost: Mutex<u64>,
    audit_commits: Mutex<Option<Histogram>>,
    checks: Mutex<BTreeMap<&'static str, Histogram>>,
    isolation: Mutex<BTreeMap<&'static str, Histogram>>,
    events: Mutex<BTreeMap<&'static str, OutputCounts>>,
}

/// What one event output did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCounts {
    /// Records its receiver acknowledged.
    pub delivered: u64,
    /// Deliveries that failed (each is retried).
    pub failed: u64,
    /// The last audit entry it delivered (what it has still to deliver is
    /// computed when scraped, from the log's head).
    pub delivered_through: i64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Metrics {
    /// One call of `method` (a policy-table path, or `other`) that ended
    /// with `code` after `took`.
    pub fn call(&self, method: &'static str, code: u32, took: Duration) {
        lock(&self.calls)
            .entry((method, code_name(code)))
            .or_insert_with(|| Histogram::new(&CALL_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// Audit entries of `kinds` committed (one batch, one lock).
    pub fn audit_committed(&self, kinds: impl IntoIterator<Item = &'static str>) {
        let mut entries = lock(&self.audit_entries);
        for kind in kinds {
            *entries.entry(kind).or_default() += 1;
        }
    }

    /// `count` audit entries that could not be committed.
    pub fn audit_lost(&self, count: u64) {
        *lock(&self.audit_lost) += count;
    }

    /// One batch commit that took `took`.
    pub fn audit_commit(&self, took: Duration) {
        lock(&self.audit_commits)
            .get_or_insert_with(|| Histogram::new(&COMMIT_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// One run of integrity check `check` (a fixed name) that took `took`.
    pub fn check(&self, check: &'static str, took: Duration) {
        lock(&self.checks)
            .entry(check)
            .or_insert_with(|| Histogram::new(&STEP_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// Isolation step `step` of a quarantine, done `after` the triggering event.
    pub fn isolation_step(&self, step: &'static str, after: Duration) {
        lock(&self.isolation)
            .entry(step)
            .or_insert_with(|| Histogram::new(&STEP_BUCKETS))
            .observe(after.as_secs_f64());
    }

    /// Changes what event output `output` did.
    pub fn event_output(&self, output: &'static str, change: impl FnOnce(&mut OutputCounts)) {
        change(lock(&self.events).entry(output).or_default());
    }

    /// A copy of the counters, for one scrape.
    #[must_use]
    pub fn snapshot(&self) -> Counted {
        Counted {
            calls: lock(&self.calls).clone(),
            audit_entries: lock(&self.audit_entries).clone(),
            audit_lost: *lock(&self.audit_lost),
            audit_commits: lock(&self.audit_commits)
                .clone()
                .unwrap_or_else(|| Histogram::new(&COMMIT_BUCKETS)),
            checks: lock(&self.checks).clone(),
            isolation: lock(&self.isolation).clone(),
            events: lock(&self.events).clone(),
        }
    }
}

/// The counters at one instant.
#[derive(Debug, Clone)]
pub struct Counted {
    /// Call latency by (method, code).
    pub calls: BTreeMap<(&'static str, &'static str), Histogram>,
    /// Audit entries committed, by kind.
    pub audit_entries: BTreeMap<&'static str, u64>,
    /// Audit entries lost.
    pub audit_lost: u64,
    /// Audit batch commit latency.
    pub audit_commits: Histogram,
    /// Integrity check durations, by check.
    pub checks: BTreeMap<&'static str, Histogram>,
    /// Time from a quarantine's trigger to each isolation step.
    pub isolation: BTreeMap<&'static str, Histogram>,
    /// Event outputs.
    pub events: BTreeMap<&'static str, OutputCounts>,
}

/// What is read when scraped, from the daemon's state.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    /// Live sessions by role.
    pub sessions_by_role: Vec<(&'static str, u64)>,
    /// Watched containers.
    pub containers: Vec<SampledContainer>,
    /// Each service ("" for the daemon) and whether it serves.
    pub services: Vec<(String, bool)>,
    /// Audit entries queued, not yet committed.
    pub audit_queue: u64,
    /// The newest committed audit entry.
    pub audit_head: i64,
}

/// One watched container, as scraped.
#[derive(Debug, Clone, Default)]
pub struct SampledContainer {
    /// Its configured name.
    pub name: String,
    /// `healthy`, `degraded`, `compromised` or `unknown`.
    pub state: &'static str,
    /// Whether it is quarantined.
    pub quarantined: bool,
    /// Open findings by severity.
    pub findings: Vec<(&'static str, u64)>,
}
