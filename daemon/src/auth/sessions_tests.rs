//! Unit tests of the session store (injected clock, no I/O).

use super::*;
use crate::auth::elevation::ElevationMethod;
use crate::clock::{Clock, ManualClock};
use std::sync::Arc;

const MINUTE: Duration = Duration::from_secs(60);

/// A store on a clock whose time never runs: the times the tests pass are
/// judged as a clock set forward (never back, unless they go below the
/// first one by more than a second).
fn store() -> SessionStore {
    store_on(Arc::new(ManualClock::starting_at(UnixMillis(0))))
}

fn store_on(clock: Arc<ManualClock>) -> SessionStore {
    SessionStore::new(
        SessionPolicy {
            idle_timeout: 30 * MINUTE,
            absolute_lifetime: 12 * 60 * MINUTE,
            elevation_window: 5 * MINUTE,
            max_per_user: 2,
        },
        clock,
    )
}

fn session(id: &str, user_id: i64, at: UnixMillis) -> Session {
    Session {
        id: id.into(),
        user_id,
        username: format!("user{user_id}"),
        role: Role::Viewer,
        peer_uid: 1000,
        created_at: at,
        last_seen: at,
        elevation: None,
        generation: 0,
        account_created: 7,
    }
}

fn add(store: &SessionStore, hash: TokenHash, session: Session) -> Vec<Session> {
    store.insert(hash, session, store.login_epoch()).unwrap()
}

#[test]
fn a_change_to_the_account_ends_its_sessions_and_refuses_logins_that_read_it_before() {
    let store = store();
    add(&store, [1; 32], session("a", 1, UnixMillis(0)));
    add(&store, [2; 32], session("b", 1, UnixMillis(0)));
    add(&store, [9; 32], session("other", 2, UnixMillis(0)));
    store
        .elevate("b", UnixMillis(0), ElevationMethod::Totp)
        .unwrap();
    // A login of user 1 that read generation 0 is still being checked…
    let in_flight = session("late", 1, UnixMillis(1));
    let began = store.login_epoch();
    // …when the account changes (generation 1), keeping the caller's "b".
    let (ended, kept) = store.supersede(1, 7, 1, Some("b"), |m| *m == ElevationMethod::Totp);
    assert_eq!(
        ended.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    let (_, kept) = kept.unwrap();
    assert_eq!(
        (kept.generation, kept.elevation),
        (1, None),
        "carried over, elevation cleared"
    );
    assert_eq!(
        store.insert([3; 32], in_flight, began),
        Err(SessionRejected::Superseded)
    );
    assert!(store.validate(&[2; 32], 1000, UnixMillis(2)).is_ok());
    assert!(
        store.validate(&[9; 32], 1000, UnixMillis(2)).is_ok(),
        "other users untouched"
    );
    // A session somehow left with the old generation is refused on use.
    store.restore([4; 32], session("stale", 1, UnixMillis(0)));
    assert_eq!(
        store.validate(&[4; 32], 1000, UnixMillis(2)),
        Err(SessionRejected::Superseded)
    );
    assert_eq!(
        store.check("stale", 1000, UnixMillis(2)),
        Err(SessionRejected::Unknown)
    );
}

#[test]
fn revoking_every_session_refuses_logins_that_began_before() {
    let store = store();
    add(&store, [1; 32], session("a", 1, UnixMillis(0)));
    let removals = store.removals();
    let before = store.login_epoch();
    assert_eq!(store.revoke_all().len(), 1);
    assert!(removals.has_changed().unwrap(), "streams are told");
    assert_eq!(
        store.insert([2; 32], session("b", 1, UnixMillis(1)), before),
        Err(SessionRejected::Superseded)
    );
    assert!(
        store
            .insert([2; 32], session("b", 1, UnixMillis(1)), store.login_epoch())
            .is_ok()
    );
}

#[test]
fn a_passive_check_does_not_count_as_use() {
    let clock = ManualClock::starting_at(UnixMillis(0));
    let store = store();
    add(&store, [1; 32], session("a", 1, clock.now()));
    clock.advance(20 * MINUTE);
    assert!(store.check("a", 1000, clock.now()).is_ok());
    assert_eq!(
        store.check("a", 1001, clock.now()),
        Err(SessionRejected::WrongPeer)
    );
    clock.advance(10 * MINUTE);
    assert_eq!(
        store.check("a", 1000, clock.now()),
        Err(SessionRejected::IdleExpired)
    );
}

#[test]
fn idle_timeout_ends_a_session_at_30_minutes_and_use_extends_it() {
    let clock = ManualClock::starting_at(UnixMillis(1_000_000));
    let store = store();
    add(&store, [1; 32], session("a", 1, clock.now()));
    clock.advance(29 * MINUTE);
    assert!(
        store.validate(&[1; 32], 1000, clock.now()).is_ok(),
        "used at 29 min"
    );
    clock.advance(29 * MINUTE);
    assert!(
        store.validate(&[1; 32], 1000, clock.now()).is_ok(),
        "idle clock restarted by use"
    );
    clock.advance(30 * MINUTE);
    assert_eq!(
        store.validate(&[1; 32], 1000, clock.now()),
        Err(SessionRejected::IdleExpired)
    );
    assert_eq!(
        store.validate(&[1; 32], 1000, clock.now()),
        Err(SessionRejected::Unknown),
        "removed"
    );
}

#[test]
fn absolute_lifetime_ends_even_a_busy_session() {
    let clock = ManualClock::starting_at(UnixMillis(0));
    let store = store();
    add(&store, [1; 32], session("a", 1, clock.now()));
    for _ in 0..(12 * 60 / 20 - 1) {
        clock.advance(20 * MINUTE);
        assert!(store.validate(&[1; 32], 1000, clock.now()).is_ok());
    }
    clock.advance(20 * MINUTE);
    assert_eq!(
        store.validate(&[1; 32], 1000, clock.now()),
        Err(SessionRejected::LifetimeExpired)
    );
}

#[test]
fn elevation_lasts_its_window() {
    let clock = ManualClock::starting_at(UnixMillis(0));
    let store = store();
    add(&store, [1; 32], session("a", 1, clock.now()));
    store
        .elevate("a", clock.now(), ElevationMethod::Totp)
        .unwrap();
    clock.advance(4 * MINUTE);
    assert!(
        store
            .validate(&[1; 32], 1000, clock.now())
            .unwrap()
            .is_elevated(clock.now())
    );
    clock.advance(MINUTE);
    assert!(
        !store
            .validate(&[1; 32], 1000, clock.now())
            .unwrap()
            .is_elevated(clock.now())
    );
}

#[test]
fn another_uid_cannot_use_the_token_nor_end_the_session() {
    let store = store();
    add(&store, [1; 32], session("a", 1, UnixMillis(0)));
    assert_eq!(
        store.validate(&[1; 32], 1001, UnixMillis(1)),
        Err(SessionRejected::WrongPeer)
    );
    assert!(store.validate(&[1; 32], 1000, UnixMillis(2)).is_ok());
}

#[test]
fn the_oldest_session_ends_beyond_the_cap() {
    let store = store();
    add(&store, [1; 32], session("a", 1, UnixMillis(1)));
    add(&store, [2; 32], session("b", 1, UnixMillis(2)));
    add(&store, [9; 32], session("other", 2, UnixMillis(2)));
    let evicted = add(&store, [3; 32], session("c", 1, UnixMillis(3)));
    assert_eq!(
        evicted.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(store.live(Some(1), UnixMillis(4)).len(), 2);
    assert_eq!(store.live(None, UnixMillis(4)).len(), 3);
}

const HOUR: Duration = Duration::from_secs(3600);

/// A store on a test clock at a realistic time.
fn clocked() -> (SessionStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_000_000_000)));
    (store_on(Arc::clone(&clock)), clock)
}

#[test]
fn a_session_left_unused_while_the_clock_goes_back_keeps_its_idle_limit_in_elapsed_time() {
    // Noticed at once by a use of another session, by the minute's persist
    // only, or only when the session itself is next checked.
    for noticed in ["use", "persist", "own check"] {
        let (store, clock) = clocked();
        add(&store, [1; 32], session("used", 1, clock.now()));
        add(&store, [2; 32], session("left", 2, clock.now()));
        clock.advance(10 * MINUTE);
        clock.rewind(HOUR);
        match noticed {
            "use" => drop(store.validate(&[1; 32], 1000, clock.now()).unwrap()),
            "persist" => drop(store.snapshot_now()),
            _ => {}
        }
        // "left" was last used 10 minutes ago in elapsed time: 20 remain,
        // whether a stream checks it or its owner uses it.
        clock.advance(20 * MINUTE - Duration::from_secs(1));
        assert!(store.check("left", 1000, clock.now()).is_ok(), "{noticed}");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            store.check("left", 1000, clock.now()).unwrap_err(),
            SessionRejected::IdleExpired,
            "{noticed}: 30 minutes unused in elapsed time"
        );
    }
}

/// Uses the session of `hash` every 20 minutes for `span`.
fn keep_using(store: &SessionStore, clock: &ManualClock, hash: TokenHash, span: Duration) {
    let step = 20 * MINUTE;
    let mut used = Duration::ZERO;
    while used + step <= span {
        clock.advance(step);
        used += step;
        store.validate(&hash, 1000, clock.now()).unwrap();
    }
    clock.advance(span - used);
    store.validate(&hash, 1000, clock.now()).unwrap();
}

#[test]
fn an_elevation_and_a_lifetime_last_no_longer_in_elapsed_time_after_the_clock_goes_back() {
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    keep_using(&store, &clock, [1; 32], 11 * HOUR);
    store
        .elevate("a", clock.now(), ElevationMethod::Totp)
        .unwrap();
    clock.rewind(HOUR);
    clock.advance(5 * MINUTE);
    store.validate(&[1; 32], 1000, clock.now()).unwrap();
    let a = store.find("a").unwrap();
    assert!(!a.is_elevated(clock.now()), "5 minutes of elapsed time");
    // 11 h 5 min after its login in elapsed time: 55 minutes remain.
    keep_using(
        &store,
        &clock,
        [1; 32],
        55 * MINUTE - Duration::from_secs(2),
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        store.validate(&[1; 32], 1000, clock.now()).unwrap_err(),
        SessionRejected::LifetimeExpired,
        "12 hours after its login in elapsed time"
    );
}

#[test]
fn small_steps_back_add_up_and_an_elevation_still_ends_after_its_window() {
    // The clock gains a second and loses 0.9 s, every second, while the
    // session is used: each step is within the tolerance, the sum is not.
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    store
        .elevate("a", clock.now(), ElevationMethod::Totp)
        .unwrap();
    let mut elevated_for = 0;
    for second in 1..=400 {
        clock.advance(Duration::from_secs(1));
        clock.rewind(Duration::from_millis(900));
        let session = store.validate(&[1; 32], 1000, clock.now()).unwrap();
        if session.is_elevated(clock.now()) {
            elevated_for = second;
        }
    }
    assert!(
        (298..=301).contains(&elevated_for),
        "elevated for {elevated_for} s of elapsed time, the window is 300 s"
    );
}

#[test]
fn times_recorded_while_the_clock_was_ahead_lose_the_lead_when_it_goes_back() {
    // Set forward an hour (or the machine slept: the wall clock ran, the
    // running time did not); a login and an elevation while it is ahead;
    // set back again.
    let (store, clock) = clocked();
    add(&store, [2; 32], session("before", 2, clock.now()));
    clock.jump(HOUR);
    add(&store, [1; 32], session("ahead", 1, clock.now()));
    store
        .elevate("ahead", clock.now(), ElevationMethod::Totp)
        .unwrap();
    clock.rewind(HOUR);
    clock.advance(5 * MINUTE);
    let ahead = store.validate(&[1; 32], 1000, clock.now()).unwrap();
    assert!(!ahead.is_elevated(clock.now()), "5 minutes elapsed");
    clock.advance(30 * MINUTE);
    assert_eq!(
        store.check("ahead", 1000, clock.now()).unwrap_err(),
        SessionRejected::IdleExpired,
        "30 minutes unused in elapsed time"
    );
}

#[test]
fn steps_back_within_a_second_move_nothing() {
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    clock.advance(Duration::from_secs(5));
    clock.rewind(Duration::from_millis(900));
    store.validate(&[1; 32], 1000, clock.now()).unwrap();
    assert_eq!(
        store.find("a").unwrap().created_at,
        UnixMillis(1_000_000_000)
    );
}

#[test]
fn a_time_read_long_before_the_lock_is_not_a_clock_set_back() {
    // A caller stalled ten minutes between reading the clock and taking
    // the session lock: the clock is read again under the lock.
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    let read_before = clock.now();
    clock.advance(10 * MINUTE);
    store.validate(&[1; 32], 1000, read_before).unwrap();
    assert_eq!(
        store.find("a").unwrap().created_at,
        UnixMillis(1_000_000_000)
    );
}

#[test]
fn a_restart_across_a_clock_set_back_follows_it_from_the_restored_last_uses() {
    let (store, clock) = clocked();
    let start = clock.now();
    let mut used = session("used", 1, start);
    used.last_seen = start.plus(10 * MINUTE);
    store.restore([1; 32], used);
    store.restore([2; 32], session("left", 2, start));
    // Restarted with the clock an hour back, 10 minutes after "used"'s use.
    clock.jump(10 * MINUTE);
    clock.rewind(HOUR);
    clock.advance(20 * MINUTE - Duration::from_secs(1));
    assert!(store.check("left", 1000, clock.now()).is_ok());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.check("left", 1000, clock.now()).unwrap_err(),
        SessionRejected::IdleExpired
    );
}

/// A stop and a start on the same clock: the book persisted at the stop
/// (its sessions and clock anchor) restored into a new one, the clock
/// moved by `while_down` in between.
fn restart(
    store: &SessionStore,
    clock: &Arc<ManualClock>,
    while_down: impl FnOnce(&ManualClock),
) -> SessionStore {
    let persisted = store.snapshot_now();
    while_down(clock);
    let restarted = store_on(clock.clone());
    for (hash, session) in persisted.sessions {
        restarted.restore(hash, session);
    }
    restarted.restore_anchor(&persisted.anchor.unwrap());
    restarted
}

#[test]
fn a_clock_set_back_while_the_daemon_was_down_is_followed_within_one_boot() {
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    clock.advance(MINUTE);
    // Down ten minutes, the clock set back 40 meanwhile.
    let restarted = restart(&store, &clock, |clock| {
        clock.advance(10 * MINUTE);
        clock.rewind(40 * MINUTE);
    });
    // Idle 11 minutes in elapsed time: 19 are left, not 30 from the
    // clock's reading.
    clock.advance(19 * MINUTE - Duration::from_secs(2));
    assert!(restarted.check("a", 1000, clock.now()).is_ok());
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        restarted.check("a", 1000, clock.now()).unwrap_err(),
        SessionRejected::IdleExpired
    );
}

#[test]
fn after_a_reboot_only_the_last_uses_show_a_clock_set_back() {
    let (store, clock) = clocked();
    add(&store, [1; 32], session("a", 1, clock.now()));
    clock.advance(MINUTE);
    let restarted = restart(&store, &clock, |clock| {
        clock.reboot();
        // Up again for longer than the first boot had run: only the origin
        // tells the two running times apart.
        clock.advance(10 * MINUTE);
        clock.rewind(40 * MINUTE);
    });
    // The running time before the reboot cannot be compared: of the 40
    // minutes back, the 29 below its last use are seen (the documented
    // limit), so it has 30 minutes from now.
    clock.advance(30 * MINUTE - Duration::from_secs(2));
    assert!(restarted.check("a", 1000, clock.now()).is_ok());
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        restarted.check("a", 1000, clock.now()).unwrap_err(),
        SessionRejected::IdleExpired
    );
}
