//! Brute-force defence: consecutive failures per account and per socket peer
//! (uid), tiered delays, and a temporary lock.
//!
//! Invariant: [`FailureTracker::begin`] is called before any hashing and costs
//! two map lookups, so a refused attempt is nearly free; an attempt counts as
//! a failure from the moment it begins until it succeeds, so an attempt cut
//! short (client gone, stream aborted, daemon killed) is never forgiven; at
//! most one attempt per account and per peer is being checked at any moment,
//! so concurrent guesses cannot all slip past the counters and occupy the
//! hashing slots; counters for one key never affect another key, so
//! hammering one account leaves every other account (and every other peer)
//! alone; memory is bounded.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use crate::clock::UnixMillis;

/// Most keys tracked; beyond it, stale and then oldest entries are dropped.
const MAX_TRACKED_KEYS: usize = 10_000;

/// Who failed: an account (by normalised username) or a socket peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    /// An account, known or not (unknown ones are tracked alike).
    Account(String),
    /// An OS user connecting to the socket.
    Peer(u32),
    /// The biometric (device-key) path of an account.
    Biometric(String),
}

impl AttemptKey {
    /// The account name this key is about, if any.
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Account(name) | Self::Biometric(name) => Some(name),
            Self::Peer(_) => None,
        }
    }
}

/// Thresholds for one kind of key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// (consecutive failures reached, wait before the next attempt), ascending.
    pub delay_tiers: Vec<(u32, Duration)>,
    /// Consecutive failures that lock the key.
    pub lock_after: u32,
    /// How long a lock lasts.
    pub lock_for: Duration,
    /// Failures older than this no longer count.
    pub forget_after: Duration,
}

impl LockoutPolicy {
    /// These thresholds with another lock point and duration.
    #[must_use]
    pub fn locking_after(self, failures: u32, lock_for: Duration) -> Self {
        Self {
            lock_after: failures.max(1),
            lock_for,
            ..self
        }
    }

    /// Accounts: 1/3/5/10 s after 3/5/7/9 failures (Kanidm's tiers), lock for
    /// 5 minutes after 10 (well under NIST's 100), forget after 15 minutes.
    #[must_use]
    pub fn accounts() -> Self {
        Self {
            delay_tiers: vec![
                (3, Duration::from_secs(1)),
                (5, Duration::from_secs(3)),
                (7, Duration::from_secs(5)),
                (9, Duration::from_secs(10)),
            ],
            lock_after: 10,
            lock_for: Duration::from_secs(5 * 60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }

    /// Biometric methods: after 5 consecutive failures the path is locked and
    /// the fallback (password + TOTP) is required (NIST SP 800-63B §5.2.3).
    #[must_use]
    pub fn biometric() -> Self {
        Self {
            delay_tiers: Vec::new(),
            lock_after: 5,
            lock_for: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }

    /// Peers try many accounts legitimately less often than attackers do:
    /// delays from 10 failures, lock for 5 minutes after 30.
    #[must_use]
    pub fn peers() -> Self {
        Self {
            delay_tiers: vec![(10, Duration::from_secs(1)), (20, Duration::from_secs(5))],
            lock_after: 30,
            lock_for: Duration::from_secs(5 * 60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }

    fn delay_for(&self, failures: u32) -> Duration {
        self.delay_tiers
            .iter()
            .rev()
            .find(|(threshold, _)| failures >= *threshold)
            .map_or(Duration::ZERO, |(_, delay)| *delay)
    }
}

/// Why an attempt is refused before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too soon after the last failure.
    Delayed {
        /// Wait this long.
        retry_after: Duration,
    },
    /// Locked until an admin unlocks it or the time passes.
    Locked {
        /// Wait this long.
        retry_after: Duration,
    },
    /// Another attempt for the same account or peer is being checked.
    InProgress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FailureRecord {
    consecutive: u32,
    last_failure: UnixMillis,
    locked_until: Option<UnixMillis>,
}

/// A key's counter, as stored so a restart does not forgive failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Whose.
    pub key: AttemptKey,
    /// Consecutive failures.
    pub consecutive: u32,
    /// Time of the latest.
    pub last_failure: UnixMillis,
    /// End of the lock, if locked.
    pub locked_until: Option<UnixMillis>,
}

/// Counts failures; shared by every login path.
#[derive(Debug)]
pub struct FailureTracker {
    accounts: LockoutPolicy,
    peers: LockoutPolicy,
    biometric: LockoutPolicy,
    records: Mutex<HashMap<AttemptKey, FailureRecord>>,
    in_flight: Mutex<HashSet<AttemptKey>>,
}

/// An attempt being checked. It was counted as a failure on every key when
/// it began; only [`Attempt::succeed`] takes that back, so an attempt that
/// ends any other way — refused, timed out, or abandoned by a client that
/// went away mid-check — stays counted. Dropping it lets the next attempt
/// for its keys begin.
#[derive(Debug)]
pub struct Attempt<'a> {
    tracker: &'a FailureTracker,
    keys: Vec<AttemptKey>,
    counted: Vec<Counter>,
    forgotten: Vec<AttemptKey>,
    locks: Vec<AttemptKey>,
}

impl Attempt<'_> {
    /// The counters as they stand with this attempt counted (to store).
    #[must_use]
    pub fn counted(&self) -> &[Counter] {
        &self.counted
    }

    /// Keys dropped to keep memory bounded while counting (to unstore).
    #[must_use]
    pub fn forgotten(&self) -> &[AttemptKey] {
        &self.forgotten
    }

    /// Keys that this attempt, if it fails, leaves locked.
    #[must_use]
    pub fn locks(&self) -> &[AttemptKey] {
        &self.locks
    }

    /// The attempt succeeded: forget the failures of all its keys. Returns
    /// the keys whose stored counters are now obsolete.
    #[must_use]
    pub fn succeed(self) -> Vec<AttemptKey> {
        let mut records = self.tracker.records();
        for key in &self.keys {
            records.remove(key);
        }
        self.keys.clone()
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .tracker
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            in_flight.remove(key);
        }
    }
}

impl FailureTracker {
    /// A tracker with the given policies.
    #[must_use]
    pub fn new(accounts: LockoutPolicy, peers: LockoutPolicy, biometric: LockoutPolicy) -> Self {
        Self {
            accounts,
            peers,
            biometric,
            records: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// Puts back counters read from the store at start-up.
    pub fn restore(&self, counters: Vec<Counter>) {
        let mut records = self.records();
        for counter in counters.into_iter().take(MAX_TRACKED_KEYS) {
            records.insert(
                counter.key,
                FailureRecord {
                    consecutive: counter.consecutive,
                    last_failure: counter.last_failure,
                    locked_until: counter.locked_until,
                },
            );
        }
    }

    /// Starts an attempt for all `keys` (e.g. account and peer): refused if
    /// any is delayed, locked, or already being checked; otherwise counted
    /// as a failure on every key until it [succeeds](Attempt::succeed).
    pub fn begin(&self, keys: &[AttemptKey], now: UnixMillis) -> Result<Attempt<'_>, Throttled> {
        for key in keys {
            self.check(key, now)?;
        }
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if keys.iter().any(|key| in_flight.contains(key)) {
                return Err(Throttled::InProgress);
            }
            in_flight.extend(keys.iter().cloned());
        }
        let mut attempt = Attempt {
            tracker: self,
            keys: keys.to_vec(),
            counted: Vec::with_capacity(keys.len()),
            forgotten: Vec::new(),
            locks: Vec::new(),
        };
        for key in keys {
            let (counter, locks, forgotten) = self.record_failure(key, now);
            if locks {
                attempt.locks.push(key.clone());
            }
            attempt.forgotten.extend(forgotten);
            attempt.counted.push(counter);
        }
        Ok(attempt)
    }

    fn policy(&self, key: &AttemptKey) -> &LockoutPolicy {
        match key {
            AttemptKey::Account(_) => &self.accounts,
            AttemptKey::Peer(_) => &self.peers,
            AttemptKey::Biometric(_) => &self.biometric,
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<AttemptKey, FailureRecord>> {
        // A panic while holding the lock leaves plain counters behind; keep using them.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an attempt for `key` may proceed at `now`.
    pub fn check(&self, key: &AttemptKey, now: UnixMillis) -> Result<(), Throttled> {
        let policy = self.policy(key);
        let Some(record) = self.records().get(key).copied() else {
            return Ok(());
        };
        if let Some(until) = record.locked_until
            && now < until
        {
            return Err(Throttled::Locked {
                retry_after: until.since(now),
            });
        }
        if now.since(record.last_failure) >= policy.forget_after {
            return Ok(());
        }
        let ready_at = record
            .last_failure
            .plus(policy.delay_for(record.consecutive));
        if now < ready_at {
            return Err(Throttled::Delayed {
                retry_after: ready_at.since(now),
            });
        }
        Ok(())
    }

    /// Counts a failure on `key`: returns the new counter, whether it locked
    /// `key`, and the keys dropped to stay within [`MAX_TRACKED_KEYS`].
    fn record_failure(
        &self,
        key: &AttemptKey,
        now: UnixMillis,
    ) -> (Counter, bool, Vec<AttemptKey>) {
        let policy = self.policy(key).clone();
        let mut records = self.records();
        let mut forgotten = Vec::new();
        if records.len() >= MAX_TRACKED_KEYS && !records.contains_key(key) {
            forgotten = self.prune(&mut records, now);
        }
        let record = records.entry(key.clone()).or_insert(FailureRecord {
            consecutive: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.since(record.last_failure) >= policy.forget_after
            || record.locked_until.is_some_and(|u| now >= u)
        {
            record.consecutive = 0;
            record.locked_until = None;
        }
        record.consecutive = record.consecutive.saturating_add(1);
        record.last_failure = now;
        let locks_now = record.consecutive >= policy.lock_after && record.locked_until.is_none();
        if locks_now {
            record.locked_until = Some(now.plus(policy.lock_for));
        }
        let counter = Counter {
            key: key.clone(),
            consecutive: record.consecutive,
            last_failure: record.last_failure,
            locked_until: record.locked_until,
        };
        (counter, locks_now, forgotten)
    }

    /// Drops records that no longer matter, then the oldest, to stay
    /// bounded; returns the dropped keys.
    fn prune(
        &self,
        records: &mut HashMap<AttemptKey, FailureRecord>,
        now: UnixMillis,
    ) -> Vec<AttemptKey> {
        let mut dropped = Vec::new();
        records.retain(|key, record| {
            let keep = record.locked_until.is_some_and(|until| now < until)
                || now.since(record.last_failure) < self.policy(key).forget_after;
            if !keep {
                dropped.push(key.clone());
            }
            keep
        });
        while records.len() >= MAX_TRACKED_KEYS {
            let oldest = records
                .iter()
                .min_by_key(|(_, record)| record.last_failure)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => {
                    records.remove(&key);
                    dropped.push(key);
                }
                None => break,
            }
        }
        dropped
    }

    /// Forgets the failures of `key` (its method just succeeded).
    pub fn forget(&self, key: &AttemptKey) {
        self.records().remove(key);
    }

    /// Lifts a lock (super-admin action). Returns whether one was active.
    pub fn unlock(&self, key: &AttemptKey, now: UnixMillis) -> bool {
        self.records()
            .remove(key)
            .is_some_and(|record| record.locked_until.is_some_and(|until| now < until))
    }

    /// When `key`'s lock lifts, if it is locked at `now`.
    #[must_use]
    pub fn locked_until(&self, key: &AttemptKey, now: UnixMillis) -> Option<UnixMillis> {
        self.records()
            .get(key)
            .and_then(|record| record.locked_until)
            .filter(|until| now < *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> FailureTracker {
        FailureTracker::new(
            LockoutPolicy::accounts(),
            LockoutPolicy::peers(),
            LockoutPolicy::biometric(),
        )
    }

    fn account(name: &str) -> AttemptKey {
        AttemptKey::Account(name.to_owned())
    }

    /// An attempt for `key` that fails; returns whether it locked the key.
    fn failed_attempt(tracker: &FailureTracker, key: &AttemptKey, now: UnixMillis) -> bool {
        let attempt = tracker.begin(std::slice::from_ref(key), now).unwrap();
        !attempt.locks().is_empty()
    }

    #[test]
    fn delays_grow_by_tier_then_the_account_locks() {
        let tracker = tracker();
        let alice = account("alice");
        let mut now = UnixMillis(1_000_000);
        for failure in 1..=9 {
            assert!(!failed_attempt(&tracker, &alice, now));
            let expected = LockoutPolicy::accounts().delay_for(failure);
            if expected > Duration::ZERO {
                assert_eq!(
                    tracker.check(&alice, now),
                    Err(Throttled::Delayed {
                        retry_after: expected
                    })
                );
            }
            now = now.plus(expected);
        }
        assert!(
            failed_attempt(&tracker, &alice, now),
            "the tenth failure locks"
        );
        assert!(matches!(
            tracker.check(&alice, now.plus(Duration::from_secs(60))),
            Err(Throttled::Locked { .. })
        ));
        assert_eq!(
            tracker.check(&alice, now.plus(Duration::from_secs(5 * 60))),
            Ok(())
        );
    }

    #[test]
    fn an_attempt_counts_from_its_start_until_it_succeeds() {
        let tracker = tracker();
        let keys = [account("alice"), AttemptKey::Peer(1000)];
        let now = UnixMillis(0);
        let attempt = tracker.begin(&keys, now).unwrap();
        assert_eq!(attempt.counted().len(), 2);
        assert!(attempt.counted().iter().all(|c| c.consecutive == 1));
        // Abandoned (dropped) without success: still counted.
        drop(attempt);
        let attempt = tracker.begin(&keys, now).unwrap();
        assert!(attempt.counted().iter().all(|c| c.consecutive == 2));
        let forgotten = attempt.succeed();
        assert_eq!(forgotten, keys);
        assert!(tracker.records().is_empty(), "success forgets every key");
    }

    #[test]
    fn one_hammered_account_leaves_others_alone() {
        let tracker = tracker();
        let mut now = UnixMillis(0);
        for _ in 0..50 {
            if tracker.check(&account("alice"), now).is_ok() {
                failed_attempt(&tracker, &account("alice"), now);
            }
            now = now.plus(Duration::from_secs(11));
        }
        assert!(tracker.check(&account("alice"), now).is_err());
        assert_eq!(tracker.check(&account("bob"), now), Ok(()));
        assert_eq!(tracker.check(&AttemptKey::Peer(1000), now), Ok(()));
    }

    #[test]
    fn unlock_and_forget_reset_and_old_failures_are_forgotten() {
        let tracker = tracker();
        let alice = account("alice");
        let now = UnixMillis(0);
        for _ in 0..10 {
            tracker.record_failure(&alice, now);
        }
        assert!(tracker.locked_until(&alice, now).is_some());
        assert!(tracker.unlock(&alice, now));
        assert_eq!(tracker.check(&alice, now), Ok(()));
        for _ in 0..4 {
            tracker.record_failure(&alice, now);
        }
        assert_eq!(
            tracker.check(&alice, now.plus(Duration::from_secs(15 * 60))),
            Ok(())
        );
        tracker.forget(&alice);
        assert_eq!(tracker.check(&alice, now), Ok(()));
    }

    #[test]
    fn restored_counters_keep_their_lock() {
        let tracker = tracker();
        let alice = account("alice");
        let now = UnixMillis(0);
        for _ in 0..10 {
            tracker.record_failure(&alice, now);
        }
        let counter = tracker.record_failure(&alice, now).0;
        let restarted = self::tracker();
        restarted.restore(vec![counter]);
        assert!(matches!(
            restarted.check(&alice, now.plus(Duration::from_secs(60))),
            Err(Throttled::Locked { .. })
        ));
    }

    #[test]
    fn one_attempt_per_key_is_checked_at_a_time() {
        let tracker = tracker();
        let now = UnixMillis(0);
        let alice = [account("alice"), AttemptKey::Peer(1000)];
        let guard = tracker.begin(&alice, now).unwrap();
        assert_eq!(
            tracker.begin(&alice, now).unwrap_err(),
            Throttled::InProgress
        );
        let same_peer = [account("bob"), AttemptKey::Peer(1000)];
        assert_eq!(
            tracker.begin(&same_peer, now).unwrap_err(),
            Throttled::InProgress
        );
        assert!(
            tracker
                .begin(&[account("bob"), AttemptKey::Peer(1001)], now)
                .is_ok()
        );
        drop(guard);
        assert!(tracker.begin(&alice, now).is_ok());
        assert!(tracker.in_flight.lock().unwrap().is_empty());
    }

    #[test]
    fn memory_stays_bounded_under_many_usernames() {
        let tracker = tracker();
        let mut forgotten = 0;
        for i in 0..(MAX_TRACKED_KEYS + 500) {
            let (_, _, dropped) =
                tracker.record_failure(&account(&format!("user{i}")), UnixMillis(i as i64));
            forgotten += dropped.len();
        }
        assert!(tracker.records().len() <= MAX_TRACKED_KEYS);
        assert!(forgotten >= 500, "dropped keys are reported for the store");
    }
}
