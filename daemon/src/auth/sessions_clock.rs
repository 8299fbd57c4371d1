//! Sessions following a wall clock set back: their limits are kept in
//! elapsed time, not wall-clock time.
//!
//! Invariant: the book remembers the latest time any session operation was
//! given (every validation, check, elevation, login and listing, the
//! periodic persist, and at start-up the latest last use of a restored
//! session), so no session's last use is after it; a time more than
//! [`SET_BACK_TOLERANCE_MS`] before it means the clock was set back, and
//! every session's login, last use and elevation move back by as much
//! before anything is judged — so a session used, left unused or followed
//! by a stream lasts no longer in elapsed time than its limits, give or
//! take the time between the last operation before the change and the
//! first after it (the persist period, 60 s, at most while the daemon
//! runs). Smaller steps back (two calls reading the clock in one order and
//! taking the lock in the other) move nothing, so they never add up.

use super::{Book, Session};
use crate::clock::UnixMillis;

/// Steps back up to this long are ordinary interleaving, not a clock
/// change.
pub(super) const SET_BACK_TOLERANCE_MS: i64 = 1_000;

impl Book {
    /// Notes `now`; if it lies more than the tolerance before the latest
    /// time seen, moves every session back by the difference first.
    pub(super) fn follow_clock(&mut self, now: UnixMillis) {
        let back = self.latest.0.saturating_sub(now.0);
        if back > SET_BACK_TOLERANCE_MS {
            for session in self.sessions.values_mut() {
                move_back(session, back);
            }
            tracing::warn!(
                back_ms = back,
                sessions = self.sessions.len(),
                "the wall clock went back; sessions keep their limits in elapsed time"
            );
        }
        if back > SET_BACK_TOLERANCE_MS || now > self.latest {
            self.latest = now;
        }
    }
}

fn move_back(session: &mut Session, back: i64) {
    session.created_at = UnixMillis(session.created_at.0.saturating_sub(back));
    session.last_seen = UnixMillis(session.last_seen.0.saturating_sub(back));
    if let Some(elevation) = session.elevation.as_mut() {
        elevation.until = UnixMillis(elevation.until.0.saturating_sub(back));
    }
}
