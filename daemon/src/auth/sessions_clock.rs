//! Sessions following a wall clock set back: their limits are kept in
//! elapsed time, not wall-clock time.
//!
//! Invariant: the book keeps an anchor — a wall-clock time and the clock's
//! running time then ([`crate::clock::Clock::running`], which is never set
//! back; on Linux the time since boot, suspend included) — and at every
//! session operation (validation, stream check, elevation, login, listing,
//! the minute's persist) expects the wall clock, read under the book's
//! lock, to read the anchor plus the time run since. Reading more than
//! [`SET_BACK_TOLERANCE_MS`] less, the clock was set back: every session's
//! login, last use and elevation move back by the whole shortfall before
//! anything is judged. Reading more than that more (set forward, or a
//! suspend where the running time does not count one), nothing moves.
//! Either way the anchor moves to now, so times recorded while the clock is
//! ahead lose the lead when it is set back (sessions recorded before the
//! step forward end sooner, never later), and small steps back add up
//! against the anchor until they show a shortfall: while the daemon runs,
//! session time never runs behind the running time by more than the
//! tolerance, however the clock is stepped, observed or not. Across a
//! restart within one boot the running time goes on: the anchor persisted
//! with the sessions is taken up again when it names the same origin (the
//! boot and time namespace), so a set-back while the daemon was down is
//! seen as well. After a reboot (or where the origin has no name) the
//! anchor is the latest stored last use: a set-back up to the time since
//! then (the downtime and the idle time before it) cannot be seen.

use std::time::Duration;

use super::{Book, Session, SessionStore};
use crate::clock::UnixMillis;

/// Shortfalls up to this long are the two clocks' granularity and slewing,
/// not a clock set back (both are read under the book's lock).
const SET_BACK_TOLERANCE_MS: u64 = 1_000;

/// A wall-clock time and the clock's running time when it was read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Anchor {
    wall: UnixMillis,
    running: Duration,
}

impl Anchor {
    /// The wall-clock time expected after running `running`.
    fn expected_at(self, running: Duration) -> UnixMillis {
        self.wall.plus(running.saturating_sub(self.running))
    }
}

/// An anchor as persisted with the sessions, for the next process: its
/// running time counts from `origin` ([`crate::clock::Clock::running_origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedAnchor {
    /// Where the running time counts from (the boot).
    pub origin: String,
    /// The wall-clock time.
    pub wall: UnixMillis,
    /// The running time when the wall clock read `wall`.
    pub running: Duration,
}

impl Book {
    /// Judges `now` (read after running `running`) against the anchor;
    /// moves every session back by a shortfall past the tolerance.
    pub(super) fn follow_clock(&mut self, now: UnixMillis, running: Duration) {
        let Some(anchor) = self.anchor else {
            self.anchor = Some(Anchor { wall: now, running });
            return;
        };
        let behind = anchor.expected_at(running).0.saturating_sub(now.0);
        if behind.unsigned_abs() <= SET_BACK_TOLERANCE_MS {
            return;
        }
        if behind > 0 {
            for session in self.sessions.values_mut() {
                move_back(session, behind);
            }
            tracing::warn!(
                back_ms = behind,
                sessions = self.sessions.len(),
                "the wall clock went back; sessions keep their limits in elapsed time"
            );
        }
        // Set back, or set forward (or suspended, where the running time
        // does not count it) — then times are recorded ahead, so a later
        // set-back counts from here: sessions recorded before end sooner,
        // never later.
        self.anchor = Some(Anchor { wall: now, running });
    }

    /// A session restored at start-up was last used at `last_seen`: the
    /// clock is expected to read at least that now.
    pub(super) fn expect_at_least(&mut self, last_seen: UnixMillis, running: Duration) {
        self.expect(
            Anchor {
                wall: last_seen,
                running,
            },
            running,
        );
    }

    /// The anchor a process before this one persisted: taken up when its
    /// running time counts from this one's `origin` and is not ahead of it
    /// (so both read one clock), and it expects a later time than the
    /// anchor held.
    pub(super) fn expect_saved(&mut self, saved: &SavedAnchor, origin: &str, running: Duration) {
        if origin == saved.origin && saved.running <= running {
            self.expect(
                Anchor {
                    wall: saved.wall,
                    running: saved.running,
                },
                running,
            );
        }
    }

    /// `candidate` becomes the anchor if it expects a later time now.
    fn expect(&mut self, candidate: Anchor, running: Duration) {
        let later = self
            .anchor
            .is_none_or(|anchor| candidate.expected_at(running) > anchor.expected_at(running));
        if later {
            self.anchor = Some(candidate);
        }
    }

    /// The anchor to persist, its running time counting from `origin`.
    pub(super) fn anchor_to_save(&self, origin: Option<String>) -> Option<SavedAnchor> {
        let anchor = self.anchor?;
        Some(SavedAnchor {
            origin: origin?,
            wall: anchor.wall,
            running: anchor.running,
        })
    }
}

impl SessionStore {
    /// Takes up the clock anchor a process before this one persisted (at
    /// start-up, after restoring its sessions): if it ran on this boot, a
    /// clock set back while the daemon was down moves every session back
    /// at the first operation.
    pub fn restore_anchor(&self, saved: &SavedAnchor) {
        let (Some(running), Some(origin)) = (self.clock.running(), self.clock.running_origin())
        else {
            return;
        };
        self.book().expect_saved(saved, &origin, running);
    }

    /// Says at start-up whether a clock set back while occcd was down can
    /// be seen from more than the sessions' last uses.
    pub fn log_clock_origin(&self) {
        match self.clock.running_origin() {
            Some(_) => {
                tracing::info!("sessions follow the wall clock across restarts within this boot")
            }
            None if cfg!(target_os = "linux") => tracing::warn!(
                credential = crate::clock::BOOT_ID_CREDENTIAL,
                "the boot id is unreadable: a wall clock set back while occcd is down is seen \
                 only below the sessions' last uses (load /proc/sys/kernel/random/boot_id as \
                 this systemd credential)"
            ),
            None => tracing::info!(
                "a wall clock set back while occcd is down is seen only below the sessions' \
                 last uses on this system"
            ),
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
