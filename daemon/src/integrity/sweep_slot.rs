//! Who sweeps a container next: one sweep at a time, and at most one
//! waiting behind it, however many ask (polls, real-time asks, restarts,
//! RunChecks).
//!
//! Invariant: an ask either gets its own turn or returns once a sweep that
//! began after the ask has finished — the queued one, which sees everything
//! the ask saw; a forced ask (hashes now) makes the next sweep that begins
//! a forced one. So asks cannot pile up sweeps without end, and none is
//! answered by a sweep that began before it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard, watch};

/// The turn-taking of one container's sweeps.
#[derive(Debug)]
pub struct SweepSlot {
    one_at_a_time: Mutex<()>,
    /// A sweep is waiting for its turn.
    waiting: AtomicBool,
    /// The next sweep to begin must hash.
    force: AtomicBool,
    /// Sweeps begun so far.
    begun: AtomicU64,
    /// The number of the last sweep that finished.
    finished: watch::Sender<u64>,
}

impl Default for SweepSlot {
    fn default() -> Self {
        Self {
            one_at_a_time: Mutex::new(()),
            waiting: AtomicBool::new(false),
            force: AtomicBool::new(false),
            begun: AtomicU64::new(0),
            finished: watch::Sender::new(0),
        }
    }
}

/// A sweep's turn: it holds the container until dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    slot: &'a SweepSlot,
    number: u64,
    /// Whether this sweep must hash (some ask forced it).
    pub forced: bool,
    _one_at_a_time: MutexGuard<'a, ()>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.slot.finished.send_replace(self.number);
    }
}

/// Clears `waiting` if the waiting ask goes away before its turn.
struct Queued<'a>(&'a AtomicBool);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl SweepSlot {
    /// Asks for a sweep (`force`: with hashes): `Some(turn)` when this ask
    /// is to sweep, `None` once a sweep queued before it, which covers it,
    /// has finished.
    pub async fn ask(&self, force: bool) -> Option<Turn<'_>> {
        if force {
            self.force.store(true, Ordering::SeqCst);
        }
        let begun_before = self.begun.load(Ordering::SeqCst);
        if self.waiting.swap(true, Ordering::SeqCst) {
            // A sweep is queued and has not begun: it begins after this ask.
            let mut finished = self.finished.subscribe();
            let _ = finished.wait_for(|number| *number > begun_before).await;
            return None;
        }
        let queued = Queued(&self.waiting);
        let guard = self.one_at_a_time.lock().await;
        drop(queued);
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        Some(Turn {
            slot: self,
            number,
            forced: self.force.swap(false, Ordering::SeqCst),
            _one_at_a_time: guard,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn many_asks_behind_a_sweep_make_one_more_and_wait_for_it() {
        let slot = Arc::new(SweepSlot::default());
        let first = slot.ask(false).await.unwrap();
        assert!(!first.forced);
        let runs = Arc::new(AtomicU64::new(0));
        let mut asks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (slot, runs) = (Arc::clone(&slot), Arc::clone(&runs));
            asks.spawn(async move {
                if let Some(turn) = slot.ask(i == 30).await {
                    runs.fetch_add(1, Ordering::SeqCst);
                    turn.forced
                } else {
                    false
                }
            });
        }
        // Let every ask reach its waiting point, then finish the first sweep.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        drop(first);
        let mut forced = 0;
        while let Some(result) = asks.join_next().await {
            forced += usize::from(result.unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one sweep for fifty asks");
        assert_eq!(forced, 1, "the forced ask made the queued sweep hash");
    }

    #[tokio::test]
    async fn an_ask_whose_queued_sweep_is_dropped_does_not_block_the_next() {
        let slot = Arc::new(SweepSlot::default());
        let first = slot.ask(false).await.unwrap();
        let queued = {
            let slot = Arc::clone(&slot);
            tokio::spawn(async move { slot.ask(false).await.map(|turn| turn.number) })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        queued.abort();
        let _ = queued.await;
        drop(first);
        // Nobody is waiting any more: the next ask gets its own turn.
        assert!(slot.ask(false).await.is_some());
    }
}
