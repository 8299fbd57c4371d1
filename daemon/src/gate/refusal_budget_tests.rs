//! Unit tests of the refusal budget: windows per uid and class, counts
//! carried and drained, the overflow past the remembered uids.

use super::*;

const T0: UnixMillis = UnixMillis(1_800_000_000_000);
const ANON: RefusalClass = RefusalClass::Anonymous;
const SIGNED_IN: RefusalClass = RefusalClass::SignedIn;

fn at(offset_ms: i64) -> UnixMillis {
    UnixMillis(T0.0 + offset_ms)
}

fn peer(uid: u32) -> Option<PeerCredentials> {
    Some(PeerCredentials {
        uid,
        gid: uid,
        pid: Some(1),
    })
}

fn audit(not_audited_before: u64, last_this_minute: bool) -> Verdict {
    Verdict::Audit {
        not_audited_before,
        last_this_minute,
    }
}

#[test]
fn a_uid_gets_its_budget_each_minute_and_the_count_of_what_it_went_over() {
    let budget = RefusalBudget::new(3);
    assert_eq!(budget.judge(peer(1000), ANON, at(0)), audit(0, false));
    assert_eq!(budget.judge(peer(1000), ANON, at(1)), audit(0, false));
    assert_eq!(budget.judge(peer(1000), ANON, at(2)), audit(0, true));
    for offset in 3..10 {
        assert_eq!(budget.judge(peer(1000), ANON, at(offset)), Verdict::Count);
    }
    assert_eq!(budget.judge(peer(1000), ANON, at(59_999)), Verdict::Count);
    // The next minute: audited, with the count of the 8 not written.
    assert_eq!(budget.judge(peer(1000), ANON, at(60_000)), audit(8, false));
    assert_eq!(budget.judge(peer(1000), ANON, at(60_001)), audit(0, false));
}

#[test]
fn one_uids_flood_leaves_other_uids_and_its_own_signed_in_budget_alone() {
    let budget = RefusalBudget::new(2);
    for offset in 0..100 {
        let _ = budget.judge(peer(1000), ANON, at(offset));
    }
    assert_eq!(budget.judge(peer(1001), ANON, at(100)), audit(0, false));
    assert_eq!(budget.judge(None, ANON, at(100)), audit(0, false));
    // Junk without a session never spends what records a user's probing.
    assert_eq!(
        budget.judge(peer(1000), SIGNED_IN, at(100)),
        audit(0, false)
    );
    assert_eq!(budget.judge(peer(1000), ANON, at(100)), Verdict::Count);
}

#[test]
fn a_clock_set_back_starts_a_new_minute() {
    let budget = RefusalBudget::new(1);
    assert_eq!(budget.judge(peer(7), ANON, at(0)), audit(0, true));
    assert_eq!(budget.judge(peer(7), ANON, at(10)), Verdict::Count);
    assert_eq!(budget.judge(peer(7), ANON, at(-3_600_000)), audit(1, true));
}

#[test]
fn counts_of_minutes_that_are_over_are_taken_once_and_everything_at_shutdown() {
    let budget = RefusalBudget::new(1);
    for offset in 0..5 {
        let _ = budget.judge(peer(1), ANON, at(offset));
    }
    for offset in 0..3 {
        let _ = budget.judge(peer(2), SIGNED_IN, at(30_000 + offset));
    }
    // At 61 s only uid 1's minute is over.
    let owed = budget.take_owed(at(61_000), false);
    assert_eq!(
        owed,
        vec![Owed {
            peer: peer(1),
            class: ANON,
            count: 4,
            since: at(0),
        }]
    );
    assert!(budget.take_owed(at(61_000), false).is_empty(), "taken once");
    // At shutdown, uid 2's too, though its minute goes on.
    let owed = budget.take_owed(at(62_000), true);
    assert_eq!(owed.len(), 1);
    assert_eq!(
        (owed[0].peer, owed[0].class, owed[0].count),
        (peer(2), SIGNED_IN, 2)
    );
    // Its next audited refusal owes nothing then.
    assert_eq!(budget.judge(peer(2), SIGNED_IN, at(95_000)), audit(0, true));
}

#[test]
fn past_the_remembered_uids_the_rest_share_an_overflow_and_no_count_is_dropped() {
    let budget = RefusalBudget::new(1);
    for uid in 0..MAX_WINDOWS as u32 {
        let _ = budget.judge(peer(uid), ANON, at(0));
    }
    // uid 0 owes a count.
    assert_eq!(budget.judge(peer(0), ANON, at(1)), Verdict::Count);
    // Within the same minute, new uids share the overflow's budget.
    assert_eq!(budget.judge(peer(900_000), ANON, at(2)), audit(0, true));
    assert_eq!(budget.judge(peer(900_001), ANON, at(3)), Verdict::Count);
    assert!(budget.windows.lock().unwrap().len() <= MAX_WINDOWS + 1);
    // A minute later, the settled uids are forgotten, the owed counts kept.
    assert_eq!(
        budget.judge(peer(900_002), ANON, at(WINDOW_MS + 10)),
        audit(0, true)
    );
    let mut owed = budget.take_owed(at(WINDOW_MS + 10), false);
    owed.sort_by_key(|owed| owed.peer.map(|peer| peer.uid));
    let counts: Vec<(Option<u32>, u64)> = owed
        .iter()
        .map(|owed| (owed.peer.map(|peer| peer.uid), owed.count))
        .collect();
    assert_eq!(counts, vec![(None, 1), (Some(0), 1)]);
    assert!(budget.windows.lock().unwrap().len() <= 3);
}
