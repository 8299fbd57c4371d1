//! Time as a parameter.
//!
//! Invariant: daemon code reads wall-clock time only through a [`Clock`], so
//! every timeout, expiry and audit timestamp can be driven by a test clock;
//! [`Clock::running`] is the time run since the clock's origin, which is
//! never set back (the OS monotonic clock, since the machine's boot), so a
//! wall clock set back shows as `now` falling behind — also across a
//! restart of the daemon, when [`Clock::running_origin`] is unchanged.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
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

    /// Time run since the clock's origin: only ever grows, whatever the
    /// wall clock does. `None` when it cannot be read: nothing is then
    /// judged by it.
    fn running(&self) -> Option<Duration>;

    /// Names the origin of [`Clock::running`]: running times read by two
    /// processes compare only under the same name (for the OS clock, the
    /// machine's boot and the time namespace). `None` when unknown: a
    /// running time is then never compared with another process's.
    fn running_origin(&self) -> Option<String>;
}

/// The largest running time read so far, in nanoseconds: never go back.
static RUNNING_NS: AtomicU64 = AtomicU64::new(0);

/// The running time's origin, found once.
static ORIGIN: OnceLock<Option<String>> = OnceLock::new();

/// Linux: the time since boot, suspend included (a suspend is time run,
/// not a wall clock set forward).
#[cfg(target_os = "linux")]
fn os_running() -> Option<Duration> {
    timespec(nix::time::ClockId::CLOCK_BOOTTIME)
}

/// Other Unix systems: the monotonic clock.
#[cfg(all(unix, not(target_os = "linux")))]
fn os_running() -> Option<Duration> {
    timespec(nix::time::ClockId::CLOCK_MONOTONIC)
}

#[cfg(unix)]
fn timespec(clock: nix::time::ClockId) -> Option<Duration> {
    let now = nix::time::clock_gettime(clock).ok()?;
    Some(Duration::new(
        u64::try_from(now.tv_sec()).ok()?,
        u32::try_from(now.tv_nsec()).ok()?,
    ))
}

/// Without a clock since boot, the time since this process started.
#[cfg(not(unix))]
fn os_running() -> Option<Duration> {
    static STARTED: OnceLock<std::time::Instant> = OnceLock::new();
    Some(STARTED.get_or_init(std::time::Instant::now).elapsed())
}

/// The systemd credential the unit loads the boot id into
/// (`LoadCredential=`): the unit's `ProcSubset=pid` hides `/proc/sys`.
pub const BOOT_ID_CREDENTIAL: &str = "boot-id";

/// Where Linux's `CLOCK_BOOTTIME` counts from: the boot (its id, from the
/// systemd credential or `/proc/sys`) and the time namespace, which offsets
/// the clock. `None` off Linux and when the boot id cannot be read.
fn linux_origin() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let from_credential = std::env::var_os("CREDENTIALS_DIRECTORY").and_then(|dir| {
        std::fs::read_to_string(std::path::Path::new(&dir).join(BOOT_ID_CREDENTIAL)).ok()
    });
    let id = from_credential
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok())?;
    let id = id.trim();
    let well_formed = id.len() == 36 && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
    if !well_formed {
        return None;
    }
    // Missing before Linux 5.6, which has no time namespaces.
    let namespace = std::fs::read_link("/proc/self/ns/time")
        .map(|link| link.display().to_string())
        .unwrap_or_default();
    Some(format!("boot {id} {namespace}"))
}

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

    fn running(&self) -> Option<Duration> {
        let read = u64::try_from(os_running()?.as_nanos()).unwrap_or(u64::MAX);
        let before = RUNNING_NS.fetch_max(read, Ordering::SeqCst);
        Some(Duration::from_nanos(before.max(read)))
    }

    fn running_origin(&self) -> Option<String> {
        ORIGIN.get_or_init(linux_origin).clone()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    running_ms: AtomicI64,
    boots: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn starting_at(start: UnixMillis) -> Self {
        Self {
            now_ms: AtomicI64::new(start.0),
            running_ms: AtomicI64::new(0),
            boots: AtomicU64::new(1),
        }
    }

    /// The machine restarts (no time passes): the running time starts
    /// again from zero under a new origin.
    pub fn reboot(&self) {
        self.running_ms.store(0, Ordering::SeqCst);
        self.boots.fetch_add(1, Ordering::SeqCst);
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

    fn running(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            u64::try_from(self.running_ms.load(Ordering::SeqCst)).unwrap_or(0),
        ))
    }

    fn running_origin(&self) -> Option<String> {
        Some(format!("manual boot {}", self.boots.load(Ordering::SeqCst)))
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
    #[cfg(target_os = "linux")]
    fn the_os_clock_runs_from_the_boot_it_names_suspend_included() {
        let boottime = || timespec(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
        let before = boottime();
        let running = SystemClock.running().unwrap();
        let after = boottime();
        assert!(
            before <= running && running <= after,
            "{before:?} {running:?} {after:?}"
        );
        let origin = SystemClock.running_origin().unwrap();
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        assert!(
            origin.starts_with(&format!("boot {}", boot_id.trim())),
            "{origin}"
        );
        assert!(origin.contains("time:["), "{origin}");
    }

    #[test]
    fn a_manual_reboot_starts_the_running_time_again_under_a_new_origin() {
        let clock = ManualClock::starting_at(UnixMillis(1_000));
        clock.advance(Duration::from_secs(5));
        let origin = clock.running_origin();
        clock.reboot();
        assert_eq!(clock.running(), Some(Duration::ZERO));
        assert_ne!(clock.running_origin(), origin);
        assert_eq!(clock.now(), UnixMillis(6_000));
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
