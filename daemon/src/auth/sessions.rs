//! Live sessions, validated from memory on every call.
//!
//! Invariant: a session is usable only from the uid that logged in, only
//! while neither its idle timeout nor its absolute lifetime has passed (by
//! the injected clock), and an expired session is removed when seen; a user
//! never holds more than the configured number of sessions.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use super::role::Role;
use crate::clock::UnixMillis;

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
    /// Owner's role at login (role changes end the user's sessions).
    pub role: Role,
    /// uid that logged in.
    pub peer_uid: u32,
    /// Login time.
    pub created_at: UnixMillis,
    /// Last successful use.
    pub last_seen: UnixMillis,
    /// End of the elevation window, if elevated.
    pub elevated_until: Option<UnixMillis>,
}

impl Session {
    /// Whether sensitive operations are allowed at `now`.
    #[must_use]
    pub fn is_elevated(&self, now: UnixMillis) -> bool {
        self.elevated_until.is_some_and(|until| now < until)
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
}

/// All live sessions.
#[derive(Debug)]
pub struct SessionStore {
    policy: SessionPolicy,
    sessions: Mutex<HashMap<TokenHash, Session>>,
}

impl SessionStore {
    /// An empty store.
    #[must_use]
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When `session` ends if unused, and at the latest.
    #[must_use]
    pub fn expiries(&self, session: &Session) -> (UnixMillis, UnixMillis) {
        (
            session.last_seen.plus(self.policy.idle_timeout),
            session.created_at.plus(self.policy.absolute_lifetime),
        )
    }

    /// Adds a session; returns those ended to respect the per-user cap.
    pub fn insert(&self, token_hash: TokenHash, session: Session) -> Vec<Session> {
        let mut sessions = self.sessions();
        let mut owned: Vec<(TokenHash, UnixMillis)> = sessions
            .iter()
            .filter(|(_, s)| s.user_id == session.user_id)
            .map(|(hash, s)| (*hash, s.created_at))
            .collect();
        owned.sort_by_key(|(_, created)| *created);
        let excess = (owned.len() + 1).saturating_sub(self.policy.max_per_user.max(1));
        let evicted = owned
            .iter()
            .take(excess)
            .filter_map(|(hash, _)| sessions.remove(hash))
            .collect();
        sessions.insert(token_hash, session);
        evicted
    }

    /// Restores a session read from the store (at start-up).
    pub fn restore(&self, token_hash: TokenHash, session: Session) {
        self.sessions().insert(token_hash, session);
    }

    /// Checks a token presented by `peer_uid` at `now` and marks it used.
    pub fn validate(
        &self,
        token_hash: &TokenHash,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Result<Session, SessionRejected> {
        let mut sessions = self.sessions();
        let session = sessions
            .get_mut(token_hash)
            .ok_or(SessionRejected::Unknown)?;
        let (idle_end, lifetime_end) = (
            session.last_seen.plus(self.policy.idle_timeout),
            session.created_at.plus(self.policy.absolute_lifetime),
        );
        let rejected = if session.peer_uid != peer_uid {
            Some(SessionRejected::WrongPeer)
        } else if now >= lifetime_end {
            Some(SessionRejected::LifetimeExpired)
        } else if now >= idle_end {
            Some(SessionRejected::IdleExpired)
        } else {
            None
        };
        match rejected {
            // A token from the wrong uid does not end the owner's session.
            Some(SessionRejected::WrongPeer) => Err(SessionRejected::WrongPeer),
            Some(expired) => {
                sessions.remove(token_hash);
                Err(expired)
            }
            None => {
                session.last_seen = now;
                Ok(session.clone())
            }
        }
    }

    /// Elevates the session `id` until `now` + the window; returns the end.
    pub fn elevate(&self, id: &str, now: UnixMillis) -> Option<(TokenHash, Session)> {
        let until = now.plus(self.policy.elevation_window);
        self.sessions()
            .iter_mut()
            .find(|(_, s)| s.id == id)
            .map(|(hash, s)| {
                s.elevated_until = Some(until);
                (*hash, s.clone())
            })
    }

    /// Ends the session `id`.
    pub fn remove(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions();
        let hash = sessions
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(hash, _)| *hash)?;
        sessions.remove(&hash)
    }

    /// Ends every session of `user_id`.
    pub fn remove_user(&self, user_id: i64) -> Vec<Session> {
        let mut sessions = self.sessions();
        let hashes: Vec<TokenHash> = sessions
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(h, _)| *h)
            .collect();
        hashes
            .iter()
            .filter_map(|hash| sessions.remove(hash))
            .collect()
    }

    /// Ends every session.
    pub fn remove_all(&self) -> Vec<Session> {
        self.sessions()
            .drain()
            .map(|(_, session)| session)
            .collect()
    }

    /// Sessions alive at `now`, optionally only those of `user_id`, oldest first.
    #[must_use]
    pub fn live(&self, user_id: Option<i64>, now: UnixMillis) -> Vec<Session> {
        let mut live: Vec<Session> = self
            .sessions()
            .values()
            .filter(|s| user_id.is_none_or(|id| s.user_id == id))
            .filter(|s| {
                let (idle_end, lifetime_end) = self.expiries(s);
                now < idle_end && now < lifetime_end
            })
            .cloned()
            .collect();
        live.sort_by_key(|s| s.created_at);
        live
    }

    /// Every session with its hash, for persisting last-seen times.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(TokenHash, Session)> {
        self.sessions()
            .iter()
            .map(|(hash, s)| (*hash, s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const MINUTE: Duration = Duration::from_secs(60);

    fn store() -> SessionStore {
        SessionStore::new(SessionPolicy {
            idle_timeout: 30 * MINUTE,
            absolute_lifetime: 12 * 60 * MINUTE,
            elevation_window: 5 * MINUTE,
            max_per_user: 2,
        })
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
            elevated_until: None,
        }
    }

    #[test]
    fn idle_timeout_ends_a_session_at_30_minutes_and_use_extends_it() {
        let clock = ManualClock::starting_at(UnixMillis(1_000_000));
        let store = store();
        store.insert([1; 32], session("a", 1, clock.now()));
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
        store.insert([1; 32], session("a", 1, clock.now()));
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
        store.insert([1; 32], session("a", 1, clock.now()));
        store.elevate("a", clock.now()).unwrap();
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
        store.insert([1; 32], session("a", 1, UnixMillis(0)));
        assert_eq!(
            store.validate(&[1; 32], 1001, UnixMillis(1)),
            Err(SessionRejected::WrongPeer)
        );
        assert!(store.validate(&[1; 32], 1000, UnixMillis(2)).is_ok());
    }

    #[test]
    fn the_oldest_session_ends_beyond_the_cap() {
        let store = store();
        store.insert([1; 32], session("a", 1, UnixMillis(1)));
        store.insert([2; 32], session("b", 1, UnixMillis(2)));
        store.insert([9; 32], session("other", 2, UnixMillis(2)));
        let evicted = store.insert([3; 32], session("c", 1, UnixMillis(3)));
        assert_eq!(
            evicted.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(store.live(Some(1), UnixMillis(4)).len(), 2);
        assert_eq!(store.live(None, UnixMillis(4)).len(), 3);
    }
}
