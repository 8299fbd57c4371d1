//! Opening, checking, persisting, restoring and ending sessions.
//!
//! Invariant: a session enters the store only if its login began after the
//! latest revocation of every session and read the account's current
//! generation; a change that raises an account's generation ends the
//! account's sessions in memory before their rows are deleted; a row is
//! written only for a session that is in memory, and a restored row whose
//! generation is older than its account's is deleted, not restored.

use super::{
    account::{Account, UserProfile, UserState},
    elevation::{Elevation, ElevationMethod},
    error::AuthError,
    lockout::AttemptKey,
    sessions::{LoginEpoch, SavedAnchor, Session, SessionRejected, TokenHash},
    shared::AuthCore,
    token::{SecretToken, TokenKind},
};
use crate::{
    audit::{AccountAction, Actor},
    clock::UnixMillis,
    store::{ClockAnchorRow, SessionRow, UserRow},
    transport::PeerCredentials,
};

/// A successful login.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The bearer token; shown once, never stored.
    pub token: SecretToken,
    /// The new session.
    pub session: Session,
    /// Who logged in.
    pub user: UserProfile,
}

/// The generation floor of a deleted account: nothing is ever accepted again.
const DELETED: i64 = i64::MAX;

fn anchor_row(anchor: &SavedAnchor) -> ClockAnchorRow {
    ClockAnchorRow {
        origin: anchor.origin.clone(),
        wall_ms: anchor.wall.0,
        running_ms: i64::try_from(anchor.running.as_millis()).unwrap_or(i64::MAX),
    }
}

fn session_row(token_hash: &TokenHash, session: &Session) -> SessionRow {
    SessionRow {
        id: session.id.clone(),
        token_hash: token_hash.to_vec(),
        user_id: session.user_id,
        peer_uid: i64::from(session.peer_uid),
        created_at: session.created_at.0,
        last_seen_at: session.last_seen.0,
        elevated_until: session.elevation.as_ref().map(|e| e.until.0),
        elevation_method: session.elevation.as_ref().map(|e| e.method.name()),
        generation: session.generation,
    }
}

fn session_id() -> Result<String, AuthError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|err| AuthError::internal("random generator failed", &err))?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

impl AuthCore {
    /// Opens a session for `account` as read by a login that began at
    /// `began`; refused if the account changed or every session was revoked
    /// while the login was being checked.
    pub(super) async fn open_session(
        &self,
        account: &Account,
        peer: PeerCredentials,
        began: LoginEpoch,
    ) -> Result<(SecretToken, Session), AuthError> {
        let token = SecretToken::generate(TokenKind::Session)
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let token_hash = self
            .tokens
            .hash(TokenKind::Session, token.expose())
            .ok_or_else(|| AuthError::internal("session token not hashable", &"length"))?;
        let now = self.now();
        let session = Session {
            id: session_id()?,
            user_id: account.row.id,
            username: account.row.username.clone(),
            role: account.role,
            peer_uid: peer.uid,
            created_at: now,
            last_seen: now,
            elevation: None,
            generation: account.row.generation,
            account_created: account.row.created_at,
        };
        let evicted = self
            .sessions
            .insert(token_hash, session.clone(), began)
            .map_err(|_| AuthError::AccountChanged)?;
        if let Err(err) = self
            .store
            .insert_session(&session_row(&token_hash, &session))
            .await
        {
            self.sessions.remove(&session.id);
            return Err(err.into());
        }
        // Ended while its row was being written (revoked by id, evicted by a
        // concurrent login, superseded): the row must not outlive it.
        if self.sessions.find(&session.id).is_none() {
            self.end_sessions(std::slice::from_ref(&session)).await?;
            return Err(AuthError::AccountChanged);
        }
        if !evicted.is_empty() {
            self.end_sessions(&evicted).await?;
            let name = account.row.username.as_str();
            let detail = format!("{} oldest ended: session cap reached", evicted.len());
            self.record(
                Actor::user(Some(peer), name),
                AccountAction::SessionsRevoked,
                Some(name),
                Some(detail),
            )
            .await;
        }
        Ok((token, session))
    }

    /// The session a bearer token presented by `peer_uid` belongs to.
    pub fn authenticate(&self, token: &str, peer_uid: u32) -> Result<Session, AuthError> {
        let hash = self
            .tokens
            .hash(TokenKind::Session, token)
            .ok_or(AuthError::Session(SessionRejected::Unknown))?;
        self.sessions
            .validate(&hash, peer_uid, self.now())
            .map_err(AuthError::Session)
    }

    /// `session` as it stands now, if it is still usable from `peer_uid`
    /// (for streams that outlive the call that opened them); not counted as use.
    pub fn recheck(&self, session: &Session, peer_uid: u32) -> Result<Session, AuthError> {
        self.sessions
            .check(&session.id, peer_uid, self.now())
            .map_err(AuthError::Session)
    }

    /// Elevates `session` by `method`, writes it and audits it.
    pub(super) async fn grant_elevation(
        &self,
        session: &Session,
        peer: PeerCredentials,
        method: ElevationMethod,
    ) -> Result<Session, AuthError> {
        if self.store.writes_refused().is_some() {
            // Not elevated in memory when it cannot be stored.
            return Err(crate::store::StoreError::WritesRefused.into());
        }
        let name = method.name();
        let (token_hash, elevated) = self
            .sessions
            .elevate(&session.id, self.now(), method)
            .ok_or(AuthError::Session(SessionRejected::Unknown))?;
        self.store
            .update_session(&session_row(&token_hash, &elevated))
            .await?;
        let username = session.username.as_str();
        self.record(
            Actor::user(Some(peer), username),
            AccountAction::Elevated,
            Some(username),
            Some(name),
        )
        .await;
        Ok(elevated)
    }

    /// Ends the session `id`: its row first, so a failure leaves it whole
    /// (and the caller told), never alive in the store alone.
    pub(super) async fn end_session(&self, id: &str) -> Result<Option<Session>, AuthError> {
        self.store.delete_sessions(&[id.to_owned()]).await?;
        Ok(self.sessions.remove(id))
    }

    /// Deletes the rows of sessions already ended in memory.
    pub(super) async fn end_sessions(&self, ended: &[Session]) -> Result<(), AuthError> {
        let ids: Vec<String> = ended.iter().map(|s| s.id.clone()).collect();
        self.store.delete_sessions(&ids).await?;
        Ok(())
    }

    /// After a change that raised `account` to `generation` (`None`: the
    /// account is gone): ends its sessions — all but `keep`, whose
    /// elevation is cleared when `clears` says its method was the factor
    /// that changed — and refuses logins that read the account before.
    /// Returns how many sessions ended.
    pub(super) async fn supersede(
        &self,
        account: &Account,
        generation: Option<i64>,
        keep: Option<&Session>,
        clears: impl Fn(&ElevationMethod) -> bool,
    ) -> Result<u32, AuthError> {
        let (ended, kept) = self.sessions.supersede(
            account.row.id,
            account.row.created_at,
            generation.unwrap_or(DELETED),
            keep.map(|s| s.id.as_str()),
            clears,
        );
        self.end_sessions(&ended).await?;
        if let Some((token_hash, kept)) = kept {
            self.store
                .update_session(&session_row(&token_hash, &kept))
                .await?;
        }
        Ok(u32::try_from(ended.len()).unwrap_or(u32::MAX))
    }

    /// Ends every session and refuses every login already under way — the
    /// compromise response: everyone re-authenticates. Returns how many ended.
    pub async fn revoke_all_sessions(&self, reason: &str) -> Result<usize, AuthError> {
        let ended = self.sessions.revoke_all();
        // Both, whatever happens to the other: the deletion ends the rows;
        // the bump makes any row that escaped it stale at restart.
        let bumped = self.store.bump_all_generations().await;
        let deleted = self.end_sessions(&ended).await;
        bumped?;
        deleted?;
        self.record(
            Actor::daemon(),
            AccountAction::SessionsRevoked,
            None,
            Some(format!("all {} sessions: {reason}", ended.len())),
        )
        .await;
        Ok(ended.len())
    }

    pub(super) async fn restore_sessions(&self) -> Result<(), AuthError> {
        self.sessions.log_clock_origin();
        let now = self.now();
        // Rows of sessions ended by their idle timeout or lifetime are not
        // even loaded (the periodic persist deletes them): start-up time and
        // memory after a long run with many logins.
        let (idle_cutoff, lifetime_cutoff) = self.ended_before(now);
        let mut stale = Vec::new();
        let alive = self
            .store
            .sessions_alive_at(idle_cutoff, lifetime_cutoff)
            .await?;
        if alive.is_empty() {
            return Ok(());
        }
        // Owners in one query, not one per session (start-up time at scale).
        let owners: std::collections::HashMap<i64, UserRow> = self
            .store
            .all_users()
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        for row in alive {
            let owner = owners
                .get(&row.user_id)
                .cloned()
                .map(Account::from_row)
                .transpose()?;
            let (Some(owner), Ok(token_hash)) =
                (owner, <[u8; 32]>::try_from(row.token_hash.as_slice()))
            else {
                stale.push(row.id);
                continue;
            };
            let elevation = match (row.elevated_until, &row.elevation_method) {
                (Some(until), Some(method)) => {
                    ElevationMethod::parse(method).map(|method| Elevation {
                        until: UnixMillis(until),
                        method,
                    })
                }
                _ => None,
            };
            let session = Session {
                id: row.id.clone(),
                user_id: row.user_id,
                username: owner.row.username.clone(),
                role: owner.role,
                peer_uid: u32::try_from(row.peer_uid).unwrap_or(u32::MAX),
                created_at: UnixMillis(row.created_at),
                last_seen: UnixMillis(row.last_seen_at),
                elevation,
                generation: row.generation,
                account_created: owner.row.created_at,
            };
            let (idle_end, lifetime_end) = self.sessions.expiries(&session);
            let current = owner.state == UserState::Active
                && session.generation == owner.row.generation
                && now < idle_end
                && now < lifetime_end;
            if current {
                self.sessions.restore(token_hash, session);
            } else {
                stale.push(row.id);
            }
        }
        if let Some(row) = self.store.clock_anchor().await? {
            self.sessions.restore_anchor(&SavedAnchor {
                origin: row.origin,
                wall: UnixMillis(row.wall_ms),
                running: std::time::Duration::from_millis(
                    u64::try_from(row.running_ms).unwrap_or(u64::MAX),
                ),
            });
        }
        self.store.delete_sessions(&stale).await?;
        Ok(())
    }

    /// Last-use and login times at or before which a session has ended at
    /// `now` (its idle timeout or its lifetime passed).
    fn ended_before(&self, now: UnixMillis) -> (i64, i64) {
        let policy = self.sessions.policy();
        let before = |limit: std::time::Duration| {
            now.0
                .saturating_sub(i64::try_from(limit.as_millis()).unwrap_or(i64::MAX))
        };
        (
            before(policy.idle_timeout),
            before(policy.absolute_lifetime),
        )
    }

    /// Writes every live session's login and last-seen times and elevation
    /// to the store with the clock anchor they were judged against, in one
    /// transaction (periodically and at shutdown), so a restart keeps idle
    /// timeouts true; then, if that write held, deletes the rows of
    /// sessions that have ended.
    /// Only in this order, and judged at the time the sessions were copied
    /// at (a clock set back before then moved them, not the cutoffs alone):
    /// no row written from this copy is deleted while its session lives.
    pub async fn persist_sessions(&self) {
        let snapshot = self.sessions.snapshot_now();
        let rows: Vec<SessionRow> = snapshot
            .sessions
            .iter()
            .map(|(token_hash, session)| session_row(token_hash, session))
            .collect();
        let anchor = snapshot.anchor.as_ref().map(anchor_row);
        if let Err(err) = self
            .store
            .update_sessions_and_anchor(&rows, anchor.as_ref())
            .await
        {
            // Rows older than the sessions: judging them by these cutoffs
            // could delete a live session's row.
            tracing::error!(error = %err, sessions = rows.len(), "sessions not persisted");
            return;
        }
        let (idle_cutoff, lifetime_cutoff) = self.ended_before(snapshot.now);
        if let Err(err) = self
            .store
            .delete_ended_sessions(idle_cutoff, lifetime_cutoff)
            .await
        {
            tracing::error!(error = %err, "ended sessions not deleted");
        }
    }

    /// Opens the session of a login that began at `began` and whose proofs
    /// all held, and audits it.
    pub(super) async fn finish_login(
        &self,
        account: &Account,
        peer: PeerCredentials,
        method: &str,
        began: LoginEpoch,
    ) -> Result<LoginOutcome, AuthError> {
        let username = account.row.username.as_str();
        self.forget_failures(&AttemptKey::Account(username.to_owned()))
            .await;
        let (token, session) = match self.open_session(account, peer, began).await {
            Ok(opened) => opened,
            Err(err) => {
                let detail = format!("{method}: {err}");
                self.record(
                    Actor::user(Some(peer), username),
                    AccountAction::LoginFailed,
                    Some(username),
                    Some(detail),
                )
                .await;
                return Err(err);
            }
        };
        self.record(
            Actor::user(Some(peer), username),
            AccountAction::LoginSucceeded,
            Some(username),
            Some(method.to_owned()),
        )
        .await;
        let user = self.profile(account).await?;
        Ok(LoginOutcome {
            token,
            session,
            user,
        })
    }
}
