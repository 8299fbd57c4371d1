//! The integrity settings a reload (SIGHUP, `systemctl reload occcd`) may
//! change while the monitor runs, and the monitor loop's heartbeat the
//! service manager's watchdog reads.
//!
//! Invariant: every flow reads these through [`Tunables`] at the moment it
//! decides (a response, a start check, a sweep's due time), never from a
//! copy taken at start, so a reload applies from the next decision on; the
//! watch and staleness loops rebuild their timers when they change.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use super::config::{IntegrityConfig, ResponsePolicy, StartPolicy};
use crate::clock::UnixMillis;

/// Intervals and policies that can change without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunables {
    /// See [`IntegrityConfig::poll_interval_ms`].
    pub poll_interval_ms: u64,
    /// See [`IntegrityConfig::hash_interval_ms`].
    pub hash_interval_ms: u64,
    /// What each severity sets off.
    pub response: ResponsePolicy,
    /// What environment start refuses.
    pub start_policy: StartPolicy,
}

impl Tunables {
    /// The tunable part of `config`.
    #[must_use]
    pub fn of(config: &IntegrityConfig) -> Self {
        Self {
            poll_interval_ms: config.poll_interval_ms,
            hash_interval_ms: config.hash_interval_ms,
            response: config.response.clone(),
            start_policy: config.start_policy.clone(),
        }
    }

    /// The poll interval as a duration (at least 100 ms, as configured).
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(100))
    }

    /// The hash interval in milliseconds, as a signed count for time sums.
    #[must_use]
    pub fn hash_interval_millis(&self) -> i64 {
        i64::try_from(self.hash_interval_ms).unwrap_or(i64::MAX)
    }

    /// The poll interval in milliseconds, as a signed count for time sums.
    #[must_use]
    pub fn poll_interval_millis(&self) -> i64 {
        i64::try_from(self.poll_interval_ms).unwrap_or(i64::MAX)
    }
}

/// When the monitor's watch loop last went round (0: not yet).
#[derive(Debug, Default)]
pub struct Heartbeat(AtomicI64);

impl Heartbeat {
    /// Records a turn of the loop at `now`.
    pub fn beat(&self, now: UnixMillis) {
        self.0.store(now.0, Ordering::Relaxed);
    }

    /// The last turn, if any.
    #[must_use]
    pub fn last(&self) -> Option<UnixMillis> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            at => Some(UnixMillis(at)),
        }
    }
}
