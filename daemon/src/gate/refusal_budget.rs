//! How many refused calls of one peer uid are audited one by one: the first
//! `per_minute` of each minute of that uid; beyond, they are counted, and
//! that uid's next audited refusal says how many were not written. One
//! local user sending refused calls as fast as the socket takes them grows
//! the audit log (and every event output) by at most `per_minute` entries
//! a minute, instead of hundreds a second.
//!
//! Invariant: one uid's refusals never spend another uid's budget; each
//! uid's first `per_minute` refusals of every minute are audited in full,
//! and the last of them says that more will be counted; a refusal not
//! audited is counted, and the count goes with the uid's next audited
//! refusal. (Every call, audited or not, is counted in the metrics.)

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use crate::clock::UnixMillis;

/// How long a budget lasts.
const WINDOW_MS: i64 = 60_000;
/// Uids remembered at most; past it, those whose minute is over and who
/// owe no count are forgotten first.
const MAX_UIDS: usize = 4_096;

/// Refusals audited per peer uid and minute.
#[derive(Debug)]
pub struct RefusalBudget {
    per_minute: u32,
    by_uid: Mutex<HashMap<Option<u32>, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: UnixMillis,
    audited: u32,
    not_audited: u64,
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Audit it.
    Audit {
        /// Refusals of this uid counted but not audited since its last
        /// audited one.
        not_audited_before: u64,
        /// It spends the uid's budget for this minute: more will be counted.
        last_this_minute: bool,
    },
    /// Count it only.
    Count,
}

impl RefusalBudget {
    /// A budget of `per_minute` audited refusals per uid (at least 1).
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            by_uid: Mutex::new(HashMap::new()),
        }
    }

    /// The verdict on a refusal of `uid` (`None`: a peer without
    /// credentials) at `now`. A clock set back starts a new minute.
    pub fn judge(&self, uid: Option<u32>, now: UnixMillis) -> Verdict {
        let mut by_uid = self.by_uid.lock().unwrap_or_else(PoisonError::into_inner);
        if by_uid.len() >= MAX_UIDS && !by_uid.contains_key(&uid) {
            forget_settled(&mut by_uid, now);
        }
        let window = by_uid.entry(uid).or_insert(Window {
            started: now,
            audited: 0,
            not_audited: 0,
        });
        let over = now.0.saturating_sub(window.started.0);
        if !(0..WINDOW_MS).contains(&over) {
            window.started = now;
            window.audited = 0;
        }
        if window.audited < self.per_minute {
            window.audited += 1;
            let not_audited_before = std::mem::take(&mut window.not_audited);
            Verdict::Audit {
                not_audited_before,
                last_this_minute: window.audited == self.per_minute,
            }
        } else {
            window.not_audited = window.not_audited.saturating_add(1);
            Verdict::Count
        }
    }
}

/// Forgets the uids whose minute is over and who owe no count; if that
/// frees nothing (a flood of distinct uids), those whose minute is over.
fn forget_settled(by_uid: &mut HashMap<Option<u32>, Window>, now: UnixMillis) {
    let over = |window: &Window| now.0.saturating_sub(window.started.0) >= WINDOW_MS;
    by_uid.retain(|_, window| !(over(window) && window.not_audited == 0));
    if by_uid.len() >= MAX_UIDS {
        let forgotten: u64 = by_uid
            .values()
            .filter(|window| over(window))
            .map(|window| window.not_audited)
            .sum();
        by_uid.retain(|_, window| !over(window));
        tracing::warn!(
            forgotten,
            "refusals counted but not audited were forgotten: too many OS users refused at once"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_800_000_000_000);

    fn at(offset_ms: i64) -> UnixMillis {
        UnixMillis(T0.0 + offset_ms)
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
        assert_eq!(budget.judge(Some(1000), at(0)), audit(0, false));
        assert_eq!(budget.judge(Some(1000), at(1)), audit(0, false));
        assert_eq!(budget.judge(Some(1000), at(2)), audit(0, true));
        for offset in 3..10 {
            assert_eq!(budget.judge(Some(1000), at(offset)), Verdict::Count);
        }
        // Still the same minute: counted.
        assert_eq!(budget.judge(Some(1000), at(59_999)), Verdict::Count);
        // The next minute: audited, with the count of the 8 not written.
        assert_eq!(budget.judge(Some(1000), at(60_000)), audit(8, false));
        assert_eq!(budget.judge(Some(1000), at(60_001)), audit(0, false));
    }

    #[test]
    fn one_uids_flood_leaves_every_other_uid_its_budget() {
        let budget = RefusalBudget::new(2);
        for offset in 0..100 {
            let _ = budget.judge(Some(1000), at(offset));
        }
        assert_eq!(budget.judge(Some(1001), at(100)), audit(0, false));
        assert_eq!(budget.judge(None, at(100)), audit(0, false));
        assert_eq!(budget.judge(Some(1000), at(100)), Verdict::Count);
    }

    #[test]
    fn a_clock_set_back_starts_a_new_minute() {
        let budget = RefusalBudget::new(1);
        assert_eq!(budget.judge(Some(7), at(0)), audit(0, true));
        assert_eq!(budget.judge(Some(7), at(10)), Verdict::Count);
        assert_eq!(budget.judge(Some(7), at(-3_600_000)), audit(1, true));
    }

    #[test]
    fn many_uids_are_forgotten_settled_first_and_the_map_stays_bounded() {
        let budget = RefusalBudget::new(1);
        for uid in 0..MAX_UIDS as u32 {
            let _ = budget.judge(Some(uid), at(0));
        }
        // uid 0 owes a count; the rest are settled.
        assert_eq!(budget.judge(Some(0), at(1)), Verdict::Count);
        let _ = budget.judge(Some(1_000_000), at(WINDOW_MS + 1));
        let by_uid = budget.by_uid.lock().unwrap();
        assert!(by_uid.len() <= 2, "{}", by_uid.len());
        assert_eq!(by_uid.get(&Some(0)).map(|w| w.not_audited), Some(1));
    }
}
