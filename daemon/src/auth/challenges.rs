//! Single-use challenges for device-bound keys.
//!
//! Invariant: a challenge is bound to this daemon instance, one user, one
//! purpose and the OS user (uid) that asked for it, expires after
//! [`CHALLENGE_LIFETIME`], and can be taken once — taking it removes it
//! whether or not the signature then verifies. One uid holds at most
//! [`MAX_PER_PEER`] open challenges and [`MAX_PER_PEER_AND_USER`] for one
//! username; beyond that its own oldest one is dropped, so a flood from one
//! uid never takes a challenge from another. The book holds at most
//! [`MAX_OPEN_CHALLENGES`].

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use ring::rand::{SecureRandom, SystemRandom};

use crate::clock::UnixMillis;

/// How long a challenge can be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Most challenges open at once (anonymous callers can create them).
pub const MAX_OPEN_CHALLENGES: usize = 10_000;
/// Most challenges one uid holds open.
pub const MAX_PER_PEER: usize = 32;
/// Most challenges one uid holds open for one username.
pub const MAX_PER_PEER_AND_USER: usize = 4;
const DOMAIN: &[u8] = b"occc-device-key-challenge-v1\0";

/// What a signature over a challenge may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Logging in.
    Login,
    /// Elevating a session.
    Elevate,
    /// Proving possession of a key being registered.
    Register,
}

impl ChallengePurpose {
    fn tag(self) -> u8 {
        match self {
            Self::Login => 1,
            Self::Elevate => 2,
            Self::Register => 3,
        }
    }
}

/// An open challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Public id.
    pub id: String,
    /// The bytes to sign.
    pub payload: Vec<u8>,
    /// Whose.
    pub username: String,
    /// What for.
    pub purpose: ChallengePurpose,
    /// The uid that asked for it, the only one that may answer it.
    pub peer_uid: u32,
    /// Issue time (the oldest of a uid's goes first).
    pub issued_at: UnixMillis,
    /// Deadline.
    pub expires_at: UnixMillis,
}

/// Why no challenge was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Too many open challenges.
    #[error("too many open challenges; retry in a minute")]
    Full,
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// All open challenges of this daemon instance.
#[derive(Debug)]
pub struct ChallengeBook {
    instance: [u8; 16],
    open: Mutex<HashMap<String, Challenge>>,
    random: SystemRandom,
}

impl ChallengeBook {
    /// A book for a new daemon instance (random instance id).
    pub fn new() -> Result<Self, ChallengeError> {
        let random = SystemRandom::new();
        let mut instance = [0u8; 16];
        random
            .fill(&mut instance)
            .map_err(|_| ChallengeError::Random)?;
        Ok(Self {
            instance,
            open: Mutex::new(HashMap::new()),
            random,
        })
    }

    /// Opens a challenge for `username` and `purpose`, asked for by
    /// `peer_uid`, at `now`.
    pub fn issue(
        &self,
        username: &str,
        purpose: ChallengePurpose,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Result<Challenge, ChallengeError> {
        let mut nonce = [0u8; 32];
        self.random
            .fill(&mut nonce)
            .map_err(|_| ChallengeError::Random)?;
        let mut id = [0u8; 16];
        self.random
            .fill(&mut id)
            .map_err(|_| ChallengeError::Random)?;
        let expires_at = now.plus(CHALLENGE_LIFETIME);
        let mut payload = Vec::with_capacity(DOMAIN.len() + 16 + 1 + 8 + username.len() + 32 + 8);
        payload.extend_from_slice(DOMAIN);
        payload.extend_from_slice(&self.instance);
        payload.push(purpose.tag());
        payload.extend_from_slice(&(username.len() as u64).to_be_bytes());
        payload.extend_from_slice(username.as_bytes());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&expires_at.0.to_be_bytes());
        let challenge = Challenge {
            id: data_encoding::HEXLOWER.encode(&id),
            payload,
            username: username.to_owned(),
            purpose,
            peer_uid,
            issued_at: now,
            expires_at,
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, c| now < c.expires_at);
        let same_user = |c: &Challenge| c.peer_uid == peer_uid && c.username == username;
        drop_oldest(&mut open, MAX_PER_PEER_AND_USER, same_user);
        drop_oldest(&mut open, MAX_PER_PEER, |c| c.peer_uid == peer_uid);
        if open.len() >= MAX_OPEN_CHALLENGES {
            return Err(ChallengeError::Full);
        }
        open.insert(challenge.id.clone(), challenge.clone());
        Ok(challenge)
    }

    /// Removes and returns the challenge `id` if it is open at `now` for
    /// `username` and `purpose` and was asked for by `peer_uid`; a
    /// mismatched one is removed all the same.
    pub fn take(
        &self,
        id: &str,
        username: &str,
        purpose: ChallengePurpose,
        peer_uid: u32,
        now: UnixMillis,
    ) -> Option<Challenge> {
        let challenge = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)?;
        let valid = challenge.username == username
            && challenge.purpose == purpose
            && challenge.peer_uid == peer_uid
            && now < challenge.expires_at;
        valid.then_some(challenge)
    }
}

/// Drops the oldest challenges matching `owned` until fewer than `cap` remain.
fn drop_oldest(
    open: &mut HashMap<String, Challenge>,
    cap: usize,
    owned: impl Fn(&Challenge) -> bool,
) {
    let mut mine: Vec<(UnixMillis, String)> = open
        .values()
        .filter(|c| owned(c))
        .map(|c| (c.issued_at, c.id.clone()))
        .collect();
    if mine.len() < cap {
        return;
    }
    mine.sort();
    for (_, id) in mine.iter().take(mine.len() + 1 - cap) {
        open.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_taken_once_and_only_for_its_user_and_purpose() {
        let book = ChallengeBook::new().unwrap();
        let now = UnixMillis(0);
        let challenge = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        assert!(
            book.take(&challenge.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_some()
        );
        assert!(
            book.take(&challenge.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_none(),
            "single use"
        );
        let other = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        assert!(
            book.take(&other.id, "bob", ChallengePurpose::Login, 1000, now)
                .is_none(),
            "other user"
        );
        assert!(
            book.take(&other.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_none(),
            "burnt by the mismatch"
        );
        let elevate = book
            .issue("alice", ChallengePurpose::Elevate, 1000, now)
            .unwrap();
        assert!(
            book.take(&elevate.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_none(),
            "other purpose"
        );
    }

    #[test]
    fn a_challenge_expires_after_a_minute_and_payloads_differ() {
        let book = ChallengeBook::new().unwrap();
        let now = UnixMillis(0);
        let first = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        let second = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        assert_ne!(first.payload, second.payload);
        assert!(
            book.take(
                &first.id,
                "alice",
                ChallengePurpose::Login,
                1000,
                now.plus(CHALLENGE_LIFETIME)
            )
            .is_none()
        );
        let later = now.plus(CHALLENGE_LIFETIME - Duration::from_millis(1));
        assert!(
            book.take(&second.id, "alice", ChallengePurpose::Login, 1000, later)
                .is_some()
        );
    }

    #[test]
    fn payloads_name_the_instance_so_another_daemon_rejects_them() {
        let (a, b) = (ChallengeBook::new().unwrap(), ChallengeBook::new().unwrap());
        let payload = a
            .issue("alice", ChallengePurpose::Login, 1000, UnixMillis(0))
            .unwrap()
            .payload;
        assert_eq!(&payload[DOMAIN.len()..DOMAIN.len() + 16], &a.instance);
        assert_ne!(a.instance, b.instance);
    }

    #[test]
    fn a_flood_from_one_uid_drops_its_own_challenges_never_another_uids() {
        let book = ChallengeBook::new().unwrap();
        let now = UnixMillis(0);
        let victim = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        for i in 0..20_000 {
            let name = format!("user{}", i % 50);
            book.issue(&name, ChallengePurpose::Login, 6666, now)
                .unwrap();
        }
        {
            let open = book.open.lock().unwrap();
            assert_eq!(
                open.values().filter(|c| c.peer_uid == 6666).count(),
                MAX_PER_PEER
            );
        }
        for _ in 0..10 {
            book.issue("alice", ChallengePurpose::Login, 6666, now)
                .unwrap();
        }
        let open = book.open.lock().unwrap();
        assert!(
            open.values()
                .filter(|c| c.peer_uid == 6666 && c.username == "alice")
                .count()
                <= MAX_PER_PEER_AND_USER
        );
        drop(open);
        assert!(
            book.take(&victim.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_some(),
            "the other uid's challenge survived the flood"
        );
    }

    #[test]
    fn a_challenge_is_answered_only_from_the_uid_that_asked() {
        let book = ChallengeBook::new().unwrap();
        let now = UnixMillis(0);
        let challenge = book
            .issue("alice", ChallengePurpose::Login, 1000, now)
            .unwrap();
        assert!(
            book.take(&challenge.id, "alice", ChallengePurpose::Login, 1001, now)
                .is_none()
        );
        assert!(
            book.take(&challenge.id, "alice", ChallengePurpose::Login, 1000, now)
                .is_none(),
            "burnt by the attempt from the other uid"
        );
    }
}
