//! Which quarantined containers have their isolation re-checked now, and
//! whether an event asked for another check while one ran.
//!
//! Invariant: an event that may undo isolation (unpause, start, restart,
//! update, a network connected) starts a check, or, while one runs for
//! that container, makes it run once more after (the first reason given
//! meanwhile kept); a check ends only when no such event came in while it
//! ran, decided under the same lock the events take. A check given up (its
//! task dropped with a lost engine connection) takes a pending reason with
//! it: the watcher re-checks every quarantine when a connection is made.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

/// The containers being re-checked, each with the reason for one more
/// check if an event asked for it meanwhile.
#[derive(Debug, Default)]
pub struct Rechecks(Mutex<HashMap<String, Option<String>>>);

impl Rechecks {
    fn running(&self) -> MutexGuard<'_, HashMap<String, Option<String>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the caller should start a check of `name` now (true), or
    /// one runs and will run again (false) — for the first reason given
    /// meanwhile (the event that undid the isolation, not a later poll's).
    pub fn begin(&self, name: &str, why: String) -> bool {
        let mut running = self.running();
        match running.get_mut(name) {
            Some(again) => {
                again.get_or_insert(why);
                false
            }
            None => {
                running.insert(name.to_owned(), None);
                true
            }
        }
    }

    /// After a check of `name`: the reason to check it again, or `None`
    /// — and then the check is over (a later event starts a new one).
    pub fn next(&self, name: &str) -> Option<String> {
        let mut running = self.running();
        let again = running.get_mut(name).and_then(Option::take);
        if again.is_none() {
            running.remove(name);
        }
        again
    }

    /// Runs `check` for `why` (after [`Rechecks::begin`] said to), then
    /// again for each reason given while it ran, until none was.
    pub async fn run<Check, Checking>(&self, name: &str, why: String, mut check: Check)
    where
        Check: FnMut(String) -> Checking,
        Checking: Future<Output = ()>,
    {
        let mut why = why;
        loop {
            check(why).await;
            match self.next(name) {
                Some(again) => why = again,
                None => return,
            }
        }
    }

    /// A check that stopped without [`Rechecks::next`] saying it was over
    /// (its task was aborted): the next event starts a new one.
    pub fn abandon(&self, name: &str) {
        self.running().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_during_a_check_runs_it_once_more_and_none_is_lost() {
        let rechecks = Rechecks::default();
        assert!(rechecks.begin("gw", "unpause during quarantine".into()));
        // Two reasons while it runs: one more check, for the first.
        assert!(!rechecks.begin("gw", "update during quarantine".into()));
        assert!(!rechecks.begin("gw", "periodic check".into()));
        // Another container is checked on its own.
        assert!(rechecks.begin("other", "unpause during quarantine".into()));
        assert_eq!(
            rechecks.next("gw").as_deref(),
            Some("update during quarantine")
        );
        // Still running (its second round): another event waits again.
        assert!(!rechecks.begin("gw", "restart during quarantine".into()));
        assert_eq!(
            rechecks.next("gw").as_deref(),
            Some("restart during quarantine")
        );
        assert_eq!(rechecks.next("gw"), None, "over");
        assert!(
            rechecks.begin("gw", "update during quarantine".into()),
            "a new check"
        );
        rechecks.abandon("gw");
        assert!(rechecks.begin("gw", "update during quarantine".into()));
    }

    #[tokio::test]
    async fn a_run_checks_again_for_what_came_in_while_it_checked() {
        let rechecks = Rechecks::default();
        let mut checked = Vec::new();
        assert!(rechecks.begin("gw", "unpause during quarantine".into()));
        rechecks
            .run("gw", "unpause during quarantine".into(), |why| {
                // An event arrives during the first check only.
                if checked.is_empty() {
                    assert!(!rechecks.begin("gw", "update during quarantine".into()));
                }
                checked.push(why);
                std::future::ready(())
            })
            .await;
        assert_eq!(
            checked,
            ["unpause during quarantine", "update during quarantine"]
        );
        assert!(
            rechecks.begin("gw", "start during quarantine".into()),
            "over"
        );
    }
}
