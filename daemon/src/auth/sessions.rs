//! Live sessions, validated from memory on every call.
//!
//! Invariant: a session is usable only from the uid that logged in, only
//! while neither its idle timeout nor its absolute lifetime has passed (by
//! the injected clock), and only while it carries its account's current
//! generation: a change to the account's role, state or credentials, or a
//! revocation of every session, ends the sessions granted before it and
//! refuses the logins that were being checked while it happened. An expired
//! or superseded session is removed when seen; a user never holds more than
//! the configured number of sessions; every removal is announced to the
//! streams that must end with it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::sync::watch;

use super::{
    elevation::{Elevation, ElevationMethod},
    role::Role,
};
use crate::clock::{Clock, UnixMillis};

#[path = "sessions_clock.rs"]
mod clock_back;

pub use clock_back::SavedAnchor;

/// Stored form of a session token (its HMAC).
pub type TokenHash = [u8; 32];

/// Timeouts and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ends a session not used for this long.
    pub idle_timeout: Duration,
    /// Ends every session this long after login.
    pub absolute_lifetime: Duration,
    /// How long an elevation lasts.
    pub elevation_window: Duration,
    /// Most sessions per user; the oldest is ended beyond it.
    pub max_per_user: usize,
}

/// One logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id.
    pub id: String,
    /// Owner's id.
    pub user_id: i64,
    /// Owner's name.
    pub username: String,
    /// Owner's role under `generation`.
    pub role: Role,
    /// uid that logged in.
    pub peer_uid: u32,
    /// Login time.
    pub created_at: UnixMillis,
    /// Last successful use.
    pub last_seen: UnixMillis,
    /// The latest elevation, if any (it may have lapsed).
    pub elevation: Option<Elevation>,
    /// The account generation this session was granted under.
    pub generation: i64,
    /// When the owner's account was created: with `user_id`, which account
    /// this is (ids of deleted accounts are reused).
    pub account_created: i64,
}

impl Session {
    /// The elevation in force at `now`, if any.
    #[must_use]
    pub fn elevation_at(&self, now: UnixMillis) -> Option<&Elevation> {
        self.elevation.as_ref().filter(|e| now < e.until)
    }

    /// Whether sensitive operations are allowed at `now`.
    #[must_use]
    pub fn is_elevated(&self, now: UnixMillis) -> bool {
        self.elevation_at(now).is_some()
    }

    /// End of the latest elevation window, if any.
    #[must_use]
    pub fn elevated_until(&self) -> Option<UnixMillis> {
        self.elevation.as_ref().map(|e| e.until)
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRejected {
    /// No such session (never existed, logged out or revoked).
    Unknown,
    /// Not used for longer than the idle timeout.
    IdleExpired,
    /// Older than the absolute lifetime.
    LifetimeExpired,
    /// Presented from another uid than the one that logged in.
    WrongPeer,
    /// Granted under an account state that has since changed (role, state,
    /// credentials), or before every session was revoked.
    Superseded,
}

/// The revocation count when a login began: a login whose count is older
/// than the store's when its session is inserted is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginEpoch(u64);

#[derive(Debug, Default)]
struct Book {
    sessions: HashMap<TokenHash, Session>,
    /// Per user id: which account (its creation time) and the oldest
    /// generation of it still accepted.
    floors: HashMap<i64, (i64, i64)>,
    /// Times every session was revoked.
    epoch: u64,
    /// What the wall clock should read at least (see `clock_back`).
    anchor: Option<clock_back::Anchor>,
}

impl Book {
    fn superseded(&self, session: &Session) -> bool {
        self.floors
            .get(&session.user_id)
            .is_some_and(|(created, floor)| {
                *created == session.account_created && session.generation < *floor
            })
    }
}

/// All live sessions.
#[derive(Debug)]
pub struct SessionStore {
    policy: SessionPolicy,
    /// Read under the lock to follow a clock set back (callers pass the
    /// time sessions are judged at).
    clock: Arc<dyn Clock>,
    book: Mutex<Book>,
    removals: watch::Sender<u64>,
}

impl SessionStore {
    /// Follows the clock (see `clock_back`), read under the book's lock so
    /// that a caller's time read before a wait for the lock is never taken
    /// for a clock set back; returns the time read.
    fn follow_clock(&self, book: &mut Book) -> UnixMillis {
        let now = self.clock.now();
        if let Some(running) = self.clock.running() {
            book.follow_clock(now, running);
        }
        now
    }

    /// An empty store whose sessions follow `clock` set back.
    #[must_use]
    pub fn new(policy: SessionPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            clock,
            book: Mutex::new(Book::default()),
            removals: watch::Sender::new(0),
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn announce_removal(&self) {
        self.removals
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Changes whenever a session is removed, so long-lived streams re-check
    /// theirs at once.
    #[must_use]
    pub fn removals(&self) -> watch::Receiver<u64> {
        self.removals.subscribe()
    }

    /// When `session` ends if unused, and at the latest.
    #[must_use]
    pub fn expiries(&self, session: &Session) -> (UnixMillis, UnixMillis) {
        (
            session.last_seen.plus(self.policy.idle_timeout),
            session.created_at.plus(self.policy.absolute_lifetime),
        )
    }

    /// Taken when a login begins, before any account data is read.
    #[must_use]
    pub fn login_epoch(&self) -> LoginEpoch {
        LoginEpoch(self.book().epoch)
    }

    /// Adds the session of a login that began at `began`; refused when every
    /// session was revoked since, or the account changed since the login
    /// read it. Returns the sessions ended to respect the per-user cap.
    pub fn insert(
        &self,
        token_hash: TokenHash,
        session: Session,
        began: LoginEpoch,
    ) -> Result<Vec<Session>, SessionRejected> {
        let evicted: Vec<Session> = {
            let mut book = self.book();
            self.follow_clock(&mut book);
            if began.0 != book.epoch || book.superseded(&session) {
                return Err(SessionRejected::Superseded);
            }
            let mut owned: Vec<(TokenHash, UnixMillis)> = book
                .sessions
                .iter()
                .filter(|(_, s)| s.user_id == session.user_id)
                .map(|(hash, s)| (*hash, s.created_at))
                .collect();
            owned.sort_by_key(|(_, created)| *created);
            let excess = (owned.len() + 1).saturating_sub(self.policy.max_per_user.max(1));
            let evicted = owned
                .iter()
                .take(excess)
                .filter_map(|(hash, _)| book.sessions.remove(hash))
                .collect();
            book.sessions.insert(token_hash, session);
            evicted
        };
        if !evicted.is_empty() {
            self.announce_removal();
        }
        Ok(evicted)
    }

    /// Restores a session read from the store (at start-up).
    /// Its last use counts as a time seen: a clock set back across the
    /// restart moves every session back at the first operation.
    pub fn restore(&self, token_hash: TokenHash, session: Session) {
        let running = self.clock.running();
        let mut book = self.book();
        if let Some(running) = running {
            book.expect_at_least(session.last_seen, running);
        }
        book.sessions.insert(token_hash, session);
    }

    fn rejection(
        &self,
        book: &Book,
        session: &Session,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Option<SessionRejected> {
        let (idle_end, lifetime_end) = self.expiries(session);
        if session.peer_uid != peer_uid {
            Some(SessionRejected::WrongPeer)
        } else if book.superseded(session) {
            Some(SessionRejected::Superseded)
        } else if now >= lifetime_end {
            Some(SessionRejected::LifetimeExpired)
        } else if now >= idle_end {
            Some(SessionRejected::IdleExpired)
        } else {
            None
        }
    }

    /// Checks a token presented by `peer_uid` at `now` and marks it used.
    pub fn validate(
        &self,
        token_hash: &TokenHash,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Result<Session, SessionRejected> {
        let outcome = {
            let mut book = self.book();
            self.follow_clock(&mut book);
            let session = book
                .sessions
                .get(token_hash)
                .ok_or(SessionRejected::Unknown)?;
            match self.rejection(&book, session, peer_uid, now) {
                // A token from the wrong uid does not end the owner's session.
                Some(SessionRejected::WrongPeer) => return Err(SessionRejected::WrongPeer),
                Some(ended) => {
                    book.sessions.remove(token_hash);
                    Err(ended)
                }
                None => {
                    let session = book
                        .sessions
                        .get_mut(token_hash)
                        .ok_or(SessionRejected::Unknown)?;
                    session.last_seen = now;
                    Ok(session.clone())
                }
            }
        };
        if outcome.is_err() {
            self.announce_removal();
        }
        outcome
    }

    /// Whether the session `id` of `peer_uid` is still usable at `now`,
    /// without counting this as use (for streams that outlive their call).
    pub fn check(
        &self,
        id: &str,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Result<Session, SessionRejected> {
        let mut book = self.book();
        self.follow_clock(&mut book);
        let session = book
            .sessions
            .values()
            .find(|s| s.id == id)
            .ok_or(SessionRejected::Unknown)?;
        match self.rejection(&book, session, peer_uid, now) {
            Some(rejected) => Err(rejected),
            None => Ok(session.clone()),
        }
    }

    /// Elevates the session `id` until `now` + the window by `method`.
    pub fn elevate(
        &self,
        id: &str,
        now: UnixMillis,
        method: ElevationMethod,
    ) -> Option<(TokenHash, Session)> {
        let until = now.plus(self.policy.elevation_window);
        let mut book = self.book();
        self.follow_clock(&mut book);
        book.sessions
            .iter_mut()
            .find(|(_, s)| s.id == id)
            .map(|(hash, s)| {
                s.elevation = Some(Elevation { until, method });
                (*hash, s.clone())
            })
    }

    /// The session `id`, if it is in the store.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<Session> {
        self.book().sessions.values().find(|s| s.id == id).cloned()
    }

    /// Ends the session `id`.
    pub fn remove(&self, id: &str) -> Option<Session> {
        let removed = {
            let mut book = self.book();
            let hash = book
                .sessions
                .iter()
                .find(|(_, s)| s.id == id)
                .map(|(hash, _)| *hash)?;
            book.sessions.remove(&hash)
        };
        self.announce_removal();
        removed
    }

    /// The account `user_id` (created at `created`) changed and now has
    /// `generation`: ends every session of it — except `keep`, which is
    /// carried over to the new generation with its elevation cleared when
    /// `clears` says the elevation's method was the factor that changed —
    /// and refuses every login that read the account before. Returns
    /// (ended, kept).
    pub fn supersede(
        &self,
        user_id: i64,
        created: i64,
        generation: i64,
        keep: Option<&str>,
        clears: impl Fn(&ElevationMethod) -> bool,
    ) -> (Vec<Session>, Option<(TokenHash, Session)>) {
        let (ended, kept) = {
            let mut book = self.book();
            let floor = book.floors.entry(user_id).or_insert((created, generation));
            *floor = if floor.0 == created {
                (created, floor.1.max(generation))
            } else {
                (created, generation)
            };
            let hashes: Vec<TokenHash> = book
                .sessions
                .iter()
                .filter(|(_, s)| s.user_id == user_id)
                .map(|(hash, _)| *hash)
                .collect();
            let mut ended = Vec::new();
            let mut kept = None;
            for hash in hashes {
                let Some(mut session) = book.sessions.remove(&hash) else {
                    continue;
                };
                if keep == Some(session.id.as_str()) {
                    session.generation = generation;
                    if session
                        .elevation
                        .as_ref()
                        .is_some_and(|e| clears(&e.method))
                    {
                        session.elevation = None;
                    }
                    book.sessions.insert(hash, session.clone());
                    kept = Some((hash, session));
                } else {
                    ended.push(session);
                }
            }
            (ended, kept)
        };
        self.announce_removal();
        (ended, kept)
    }

    /// Ends every session and refuses every login that began before.
    pub fn revoke_all(&self) -> Vec<Session> {
        let ended = {
            let mut book = self.book();
            book.epoch = book.epoch.wrapping_add(1);
            book.sessions.drain().map(|(_, session)| session).collect()
        };
        self.announce_removal();
        ended
    }

    /// Sessions alive at `now`, optionally only those of `user_id`, oldest first.
    #[must_use]
    pub fn live(&self, user_id: Option<i64>, now: UnixMillis) -> Vec<Session> {
        let mut book = self.book();
        self.follow_clock(&mut book);
        let mut live: Vec<Session> = book
            .sessions
            .values()
            .filter(|s| user_id.is_none_or(|id| s.user_id == id))
            .filter(|s| {
                let (idle_end, lifetime_end) = self.expiries(s);
                now < idle_end && now < lifetime_end && !book.superseded(s)
            })
            .cloned()
            .collect();
        live.sort_by_key(|s| s.created_at);
        live
    }

    /// The time now, read under the book's lock after following the
    /// clock, every session with its hash as of then (for persisting:
    /// cutoffs from this time match these sessions' times), and the clock
    /// anchor they were judged against.
    #[must_use]
    pub fn snapshot_now(&self) -> Snapshot {
        let mut book = self.book();
        let now = self.follow_clock(&mut book);
        let sessions = book
            .sessions
            .iter()
            .map(|(hash, s)| (*hash, s.clone()))
            .collect();
        let anchor = book.anchor_to_save(self.clock.running_origin());
        Snapshot {
            now,
            sessions,
            anchor,
        }
    }
}

/// The sessions as of one instant, to persist.
#[derive(Debug)]
pub struct Snapshot {
    /// When they were copied.
    pub now: UnixMillis,
    /// Every live session, with its token hash.
    pub sessions: Vec<(TokenHash, Session)>,
    /// The clock anchor then, when the running time's origin is known.
    pub anchor: Option<SavedAnchor>,
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
