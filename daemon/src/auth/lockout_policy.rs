//! What the brute-force defence counts and how it answers: the keys
//! failures are counted under, the delay and lock thresholds, and why an
//! attempt is refused before it is checked.
//!
//! Invariant: delays only grow with consecutive failures (tiers ascending),
//! and a key of one kind never stands for another kind's key.

use std::time::Duration;

/// Who failed: an account (by normalised username) or a socket peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    /// An account, known or not (unknown ones are tracked alike).
    Account(String),
    /// An OS user connecting to the socket.
    Peer(u32),
    /// The biometric path (device keys, PAM) of an account, as tried from
    /// one OS user: another uid's failures cannot lock it.
    Biometric(String, u32),
}

impl AttemptKey {
    /// The account name this key is about, if any.
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Account(name) | Self::Biometric(name, _) => Some(name),
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

    pub(super) fn delay_for(&self, failures: u32) -> Duration {
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
    /// This OS user left too many failed attempts on too many names lately,
    /// or the table is full of locks: nothing new is tracked, so nothing
    /// new is tried.
    Crowded {
        /// Wait this long.
        retry_after: Duration,
    },
}
