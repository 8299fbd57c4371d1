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
};

use crate::clock::UnixMillis;

/// Most keys tracked; beyond it, stale entries and then the oldest with a
/// single failure are dropped — never a locked one.
const MAX_TRACKED_KEYS: usize = 10_000;
/// Failed-attempt records one OS user may leave behind per
/// `forget_after` of accounts, so no one uid can crowd out the others'.
const MAX_RECORDS_PER_PEER: u32 = 256;

pub use super::lockout_policy::{AttemptKey, LockoutPolicy, Throttled};

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
    /// Per uid: records it created that still stand, since when.
    created: Mutex<HashMap<u32, (u32, UnixMillis)>>,
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
    /// The uid charged for the records this attempt created.
    created_by: Option<(u32, u32)>,
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
        {
            let mut records = self.tracker.records();
            for key in &self.keys {
                records.remove(key);
            }
        }
        if let Some((uid, count)) = self.created_by {
            self.tracker.uncharge(uid, count);
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
            created: Mutex::new(HashMap::new()),
        }
    }

    fn uncharge(&self, uid: u32, count: u32) {
        let mut created = self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((charged, _)) = created.get_mut(&uid) {
            *charged = charged.saturating_sub(count);
        }
    }

    /// Charges `uid` for `count` new records; refused beyond its share.
    fn charge(&self, uid: u32, count: u32, now: UnixMillis) -> Result<(), Throttled> {
        if count == 0 {
            return Ok(());
        }
        let window = self.accounts.forget_after;
        let mut created = self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (charged, since) = created.entry(uid).or_insert((0, now));
        if now.since(*since) >= window {
            *charged = 0;
            *since = now;
        }
        if *charged + count > MAX_RECORDS_PER_PEER {
            return Err(Throttled::Crowded {
                retry_after: since.plus(window).since(now),
            });
        }
        *charged += count;
        Ok(())
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
        // A uid pays for the records its attempt leaves on other names.
        let peer = keys.iter().find_map(|key| match key {
            AttemptKey::Peer(uid) => Some(*uid),
            _ => None,
        });
        let fresh = {
            let records = self.records();
            let fresh = keys
                .iter()
                .filter(|key| !matches!(key, AttemptKey::Peer(_)) && !records.contains_key(key))
                .count();
            if records.len() + fresh > MAX_TRACKED_KEYS && self.full_of_locks(&records, now) {
                return Err(Throttled::Crowded {
                    retry_after: self.accounts.lock_for,
                });
            }
            u32::try_from(fresh).unwrap_or(u32::MAX)
        };
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if keys.iter().any(|key| in_flight.contains(key)) {
                return Err(Throttled::InProgress);
            }
            if let Some(uid) = peer {
                self.charge(uid, fresh, now)?;
            }
            in_flight.extend(keys.iter().cloned());
        }
        let mut attempt = Attempt {
            tracker: self,
            keys: keys.to_vec(),
            counted: Vec::with_capacity(keys.len()),
            forgotten: Vec::new(),
            locks: Vec::new(),
            created_by: peer.map(|uid| (uid, fresh)),
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

    /// Whether nothing could be dropped to make room: every record is locked.
    fn full_of_locks(&self, records: &HashMap<AttemptKey, FailureRecord>, now: UnixMillis) -> bool {
        records
            .values()
            .all(|record| record.locked_until.is_some_and(|until| now < until))
    }

    fn policy(&self, key: &AttemptKey) -> &LockoutPolicy {
        match key {
            AttemptKey::Account(_) => &self.accounts,
            AttemptKey::Peer(_) => &self.peers,
            AttemptKey::Biometric(..) => &self.biometric,
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

    /// Drops records that no longer matter, then the oldest with a single
    /// failure, then the oldest unlocked, to stay bounded — never a locked
    /// record; returns the dropped keys.
    fn prune(
        &self,
        records: &mut HashMap<AttemptKey, FailureRecord>,
        now: UnixMillis,
    ) -> Vec<AttemptKey> {
        let locked = |record: &FailureRecord| record.locked_until.is_some_and(|until| now < until);
        let mut dropped = Vec::new();
        records.retain(|key, record| {
            let keep =
                locked(record) || now.since(record.last_failure) < self.policy(key).forget_after;
            if !keep {
                dropped.push(key.clone());
            }
            keep
        });
        for single_only in [true, false] {
            while records.len() >= MAX_TRACKED_KEYS {
                let oldest = records
                    .iter()
                    .filter(|(_, record)| !locked(record))
                    .filter(|(_, record)| !single_only || record.consecutive <= 1)
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
        }
        dropped
    }

    /// Forgets the failures of `key` (its method just succeeded).
    pub fn forget(&self, key: &AttemptKey) {
        self.records().remove(key);
    }

    /// Forgets the failures of every key `matches` picks; returns them.
    pub fn forget_where(&self, matches: impl Fn(&AttemptKey) -> bool) -> Vec<AttemptKey> {
        let mut records = self.records();
        let keys: Vec<AttemptKey> = records.keys().filter(|key| matches(key)).cloned().collect();
        for key in &keys {
            records.remove(key);
        }
        keys
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
#[path = "lockout_tests.rs"]
mod tests;
