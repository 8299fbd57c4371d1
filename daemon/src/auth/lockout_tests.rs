//! Tests of the failure tracker: lock-outs, throttling, caps per peer.

use std::time::Duration;

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
fn one_uid_cannot_crowd_out_locks_or_leave_records_without_end() {
    let tracker = tracker();
    let now = UnixMillis(0);
    for _ in 0..10 {
        tracker.record_failure(&account("victim"), now);
    }
    let mut refused = 0;
    for i in 0..1_000 {
        let keys = [account(&format!("junk{i}")), AttemptKey::Peer(6666)];
        match tracker.begin(&keys, now) {
            Ok(attempt) => drop(attempt),
            Err(Throttled::Crowded { .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
        // The attacker's own login succeeds now and then, which resets
        // the uid's counter — but not what it left on other names.
        let own = [account("mallory"), AttemptKey::Peer(6666)];
        if let Ok(attempt) = tracker.begin(&own, now) {
            let _ = attempt.succeed();
        }
    }
    assert_eq!(refused, 1_000 - MAX_RECORDS_PER_PEER as usize);
    assert!(tracker.locked_until(&account("victim"), now).is_some());
    // Another uid is unaffected.
    assert!(
        tracker
            .begin(&[account("bob"), AttemptKey::Peer(1000)], now)
            .is_ok()
    );
}

#[test]
fn pruning_never_drops_a_lock() {
    let tracker = tracker();
    let now = UnixMillis(0);
    for _ in 0..10 {
        tracker.record_failure(&account("victim"), now);
    }
    for i in 0..(MAX_TRACKED_KEYS + 100) {
        tracker.record_failure(
            &account(&format!("u{i}")),
            now.plus(Duration::from_millis(1)),
        );
    }
    assert!(tracker.locked_until(&account("victim"), now).is_some());
    assert!(tracker.records().len() <= MAX_TRACKED_KEYS);
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

#[test]
fn a_table_full_of_locks_refuses_new_names_until_locks_expire() {
    let lock_for = Duration::from_secs(300);
    let tracker = FailureTracker::new(
        LockoutPolicy::accounts().locking_after(1, lock_for),
        LockoutPolicy::peers(),
        LockoutPolicy::biometric(),
    );
    let now = UnixMillis(0);
    for i in 0..MAX_TRACKED_KEYS {
        tracker.record_failure(&account(&format!("locked{i}")), now);
    }
    assert_eq!(tracker.records().len(), MAX_TRACKED_KEYS);
    match tracker.begin(&[account("newcomer")], now) {
        Err(Throttled::Crowded { retry_after }) => assert_eq!(retry_after, lock_for),
        other => panic!("a new name was tried with every record a lock: {other:?}"),
    }
    assert!(
        tracker.locked_until(&account("locked0"), now).is_some(),
        "no lock was dropped"
    );
    // Once the locks have run out, room is made again.
    let later = now.plus(lock_for + Duration::from_millis(1));
    assert!(tracker.begin(&[account("newcomer")], later).is_ok());
}
