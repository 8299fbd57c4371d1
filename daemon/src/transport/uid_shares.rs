//! Places counted per socket peer uid, bounded per uid and in all: what
//! keeps one local user from taking what every user shares (connections,
//! long-lived streams).
//!
//! Invariant: a place is granted only while its uid holds fewer than the
//! per-uid bound and all uids together fewer than the total — and, for
//! a caller asked to leave places for others, while such callers hold
//! fewer than the total less those places; it is given
//! back exactly once, when its [`Share`] is dropped, however its holder
//! ended — so a uid at its bound never lowers what another uid may take.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// Places per uid and in all.
#[derive(Debug)]
pub struct UidShares {
    per_uid: usize,
    total: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    by_uid: HashMap<u32, usize>,
    total: usize,
    /// Places held by callers asked to leave some for others.
    leaving: usize,
}

/// Why no place was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The uid holds its bound already.
    Uid {
        /// The per-uid bound.
        bound: usize,
    },
    /// All uids together hold the total.
    Total {
        /// The total.
        bound: usize,
    },
    /// All uids together hold what is open to this caller; the rest is
    /// kept for others (see [`UidShares::take_leaving`]).
    Kept {
        /// What this caller could take in all.
        bound: usize,
    },
}

/// One granted place; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: Arc<UidShares>,
    uid: u32,
    /// Counted among the places of callers leaving some for others.
    leaving: bool,
}

impl UidShares {
    /// At most `per_uid` places per uid and `total` in all.
    #[must_use]
    pub fn new(per_uid: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_uid,
            total,
            held: Mutex::new(Held::default()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for `uid`, if it is under both bounds.
    pub fn take(self: &Arc<Self>, uid: u32) -> Result<Share, Refused> {
        self.take_leaving(uid, 0)
    }

    /// A place for `uid`, if it is under both bounds and the callers asked
    /// to leave `kept` places (this one among them) hold fewer than the
    /// total less `kept`: those places are for callers who [`Self::take`].
    pub fn take_leaving(self: &Arc<Self>, uid: u32, kept: usize) -> Result<Share, Refused> {
        let mut held = self.held();
        if held.by_uid.get(&uid).copied().unwrap_or(0) >= self.per_uid {
            return Err(Refused::Uid {
                bound: self.per_uid,
            });
        }
        if held.total >= self.total {
            return Err(Refused::Total { bound: self.total });
        }
        let open = self.total.saturating_sub(kept);
        let leaving = kept > 0;
        if leaving && held.leaving >= open {
            return Err(Refused::Kept { bound: open });
        }
        held.leaving += usize::from(leaving);
        *held.by_uid.entry(uid).or_insert(0) += 1;
        held.total += 1;
        Ok(Share {
            shares: Arc::clone(self),
            uid,
            leaving,
        })
    }

    /// Places `uid` holds now.
    #[must_use]
    pub fn held_by(&self, uid: u32) -> usize {
        self.held().by_uid.get(&uid).copied().unwrap_or(0)
    }

    /// Places all uids hold now.
    #[must_use]
    pub fn held_in_all(&self) -> usize {
        self.held().total
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held();
        if let Some(count) = held.by_uid.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.by_uid.remove(&self.uid);
            }
        }
        held.total = held.total.saturating_sub(1);
        if self.leaving {
            held.leaving = held.leaving.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_share_and_its_places_back_and_others_are_not_counted() {
        let shares = UidShares::new(3, 10);
        let mine: Vec<Share> = (0..3).map(|_| shares.take(1000).unwrap()).collect();
        assert_eq!(shares.take(1000).unwrap_err(), Refused::Uid { bound: 3 });
        let other = shares.take(1001).expect("another uid is served");
        drop(mine);
        assert_eq!(shares.held_by(1000), 0);
        assert!(shares.take(1000).is_ok(), "places come back");
        drop(other);
        assert_eq!(shares.held_in_all(), 0);
    }

    #[test]
    fn places_kept_for_others_are_taken_only_by_them() {
        let shares = UidShares::new(1, 2);
        let first = shares.take_leaving(1000, 1).unwrap();
        assert_eq!(
            shares.take_leaving(1001, 1).unwrap_err(),
            Refused::Kept { bound: 1 },
            "the last place is kept"
        );
        let kept = shares.take(1002).expect("the kept place");
        assert_eq!(shares.take(1003).unwrap_err(), Refused::Total { bound: 2 });
        drop(first);
        // The kept place is in use, the other free: open to them again.
        let again = shares.take_leaving(1001, 1).expect("free again");
        drop((kept, again));
        assert_eq!(shares.held_in_all(), 0);
        let both = (shares.take(1002).unwrap(), shares.take(1003).unwrap());
        assert_eq!(
            shares.take_leaving(1000, 1).unwrap_err(),
            Refused::Total { bound: 2 },
            "those it is kept for may take every place"
        );
        drop(both);
    }

    #[test]
    fn the_total_bounds_every_uid_together() {
        let shares = UidShares::new(3, 10);
        let places: Vec<Share> = (0..10)
            .map(|i| shares.take(u32::try_from(i / 3).unwrap()).unwrap())
            .collect();
        assert_eq!(
            shares.take(99_999).unwrap_err(),
            Refused::Total { bound: 10 }
        );
        drop(places);
        assert!(shares.take(99_999).is_ok());
    }
}
