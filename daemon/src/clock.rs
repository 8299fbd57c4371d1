//! Time as a parameter.
//!
//! Invariant: daemon code reads wall-clock time only through a [`Clock`], so
//! every timeout, expiry and audit timestamp can be driven by a test clock;
//! [`Clock::running`] is the time run since the clock started, which is
//! never set back (the OS monotonic clock), so a wall clock set back shows
//! as `now` falling behind.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// This instant moved forward by `duration` (saturating).
    #[must_use]
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(millis(duration)))
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> UnixMillis;

    /// Time run since the clock started: only ever grows, whatever the
    /// wall clock does.
    fn running(&self) -> Duration;
}

/// When this process first asked the OS clock how long it has run.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the OS clock
    fn now(&self) -> UnixMillis {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixMillis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    fn running(&self) -> Duration {
        STARTED.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    running_ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn starting_at(start: UnixMillis) -> Self {
        Self {
            now_ms: AtomicI64::new(start.0),
            running_ms: AtomicI64::new(0),
        }
    }

    /// Lets `step` pass: the wall clock and the running time move on.
    pub fn advance(&self, step: Duration) {
        self.now_ms.fetch_add(millis(step), Ordering::SeqCst);
        self.running_ms.fetch_add(millis(step), Ordering::SeqCst);
    }

    /// Sets the wall clock forward by `step`, as a person or NTP does: no
    /// time passes.
    pub fn jump(&self, step: Duration) {
        self.now_ms.fetch_add(millis(step), Ordering::SeqCst);
    }

    /// Sets the wall clock back by `step`, as a person or NTP does: no time
    /// passes.
    pub fn rewind(&self, step: Duration) {
        self.now_ms.fetch_sub(millis(step), Ordering::SeqCst);
    }
}

/// `step` in whole milliseconds (saturating).
fn millis(step: Duration) -> i64 {
    i64::try_from(step.as_millis()).unwrap_or(i64::MAX)
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.now_ms.load(Ordering::SeqCst))
    }

    fn running(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.running_ms.load(Ordering::SeqCst)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_at(UnixMillis(1_000));
        assert_eq!(clock.now(), UnixMillis(1_000));
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(clock.now(), UnixMillis(1_000 + 30 * 60 * 1_000));
    }

    #[test]
    fn since_never_goes_negative() {
        assert_eq!(UnixMillis(5).since(UnixMillis(10)), Duration::ZERO);
        assert_eq!(
            UnixMillis(10).since(UnixMillis(4)),
            Duration::from_millis(6)
        );
    }
}
