//! The brute-force defence as the flows use it: begin an attempt (refused
//! while delayed, locked or already being checked; counted and stored as a
//! failure before anything is verified), then record how it ended.
//!
//! Invariant: an attempt's failure is on disk before its proof is checked,
//! so neither a client that goes away nor a daemon that is killed mid-check
//! forgives it; only success forgets failures; the counters read back at
//! start-up are the ones stored.

use super::{
    error::AuthError,
    lockout::{Attempt, AttemptKey, Counter, Throttled},
    shared::AuthCore,
};
use crate::{
    audit::{AccountAction, Actor},
    clock::UnixMillis,
    store::AuthFailureRow,
    transport::PeerCredentials,
};

fn stored_key(key: &AttemptKey) -> (&'static str, String) {
    match key {
        AttemptKey::Account(name) => ("account", name.clone()),
        AttemptKey::Peer(uid) => ("peer", uid.to_string()),
        AttemptKey::Biometric(name, uid) => ("biometric", format!("{name}:{uid}")),
    }
}

fn key_of(row: &AuthFailureRow) -> Option<AttemptKey> {
    match row.kind {
        "account" => Some(AttemptKey::Account(row.subject.clone())),
        "peer" => row.subject.parse().ok().map(AttemptKey::Peer),
        "biometric" => {
            let (name, uid) = row.subject.rsplit_once(':')?;
            Some(AttemptKey::Biometric(name.to_owned(), uid.parse().ok()?))
        }
        _ => None,
    }
}

impl AuthCore {
    /// Begins an attempt on `account` (and the peer's uid): refused if either
    /// is delayed, locked, or already being checked; otherwise counted as a
    /// failure, on disk, until [`AuthCore::succeed`].
    pub(super) async fn throttle(
        &self,
        account: &AttemptKey,
        peer: Option<PeerCredentials>,
    ) -> Result<Attempt<'_>, AuthError> {
        if self.store.writes_refused().is_some() {
            // No attempt can be recorded, nor a session: refused before it
            // is counted, so retries meanwhile lock nobody out.
            return Err(crate::store::StoreError::WritesRefused.into());
        }
        let mut keys = vec![account.clone()];
        keys.extend(peer.map(|p| AttemptKey::Peer(p.uid)));
        let refused = match self.failures.begin(&keys, self.now()) {
            Ok(attempt) => {
                self.store_counters(&attempt).await?;
                return Ok(attempt);
            }
            Err(Throttled::Delayed { retry_after }) => AuthError::Throttled { retry_after },
            Err(Throttled::Locked { retry_after }) => AuthError::Locked { retry_after },
            Err(Throttled::InProgress) => AuthError::AttemptInProgress,
            Err(Throttled::Crowded { retry_after }) => AuthError::Throttled { retry_after },
        };
        self.record(
            Actor::peer(peer),
            AccountAction::LoginThrottled,
            account.username(),
            Some(refused.to_string()),
        )
        .await;
        Err(refused)
    }

    async fn store_counters(&self, attempt: &Attempt<'_>) -> Result<(), AuthError> {
        let rows: Vec<AuthFailureRow> = attempt
            .counted()
            .iter()
            .map(|counter| {
                let (kind, subject) = stored_key(&counter.key);
                AuthFailureRow {
                    kind,
                    subject,
                    consecutive: i64::from(counter.consecutive),
                    last_failure: counter.last_failure.0,
                    locked_until: counter.locked_until.map(|u| u.0),
                }
            })
            .collect();
        self.store.save_auth_failures(&rows).await?;
        self.unstore_counters(attempt.forgotten()).await;
        Ok(())
    }

    async fn unstore_counters(&self, keys: &[AttemptKey]) {
        let keys: Vec<_> = keys.iter().map(stored_key).collect();
        if let Err(err) = self.store.delete_auth_failures(&keys).await {
            tracing::error!(error = %err, "forgotten failure counters not removed from the store");
        }
    }

    /// The attempt succeeded: its keys' failures are forgotten.
    pub(super) async fn succeed(&self, attempt: Attempt<'_>) {
        let keys = attempt.succeed();
        self.unstore_counters(&keys).await;
    }

    /// Forgets the failures of `key` outside an attempt (a super-admin
    /// unlocks).
    pub(super) async fn forget_failures(&self, key: &AttemptKey) {
        self.failures.forget(key);
        self.unstore_counters(std::slice::from_ref(key)).await;
    }

    /// Forgets the failures of `username`'s biometric path from every OS
    /// user (the password fallback succeeded, or the account is gone).
    pub(super) async fn forget_biometric_failures(&self, username: &str) {
        let keys = self
            .failures
            .forget_where(|key| matches!(key, AttemptKey::Biometric(name, _) if name == username));
        self.unstore_counters(&keys).await;
    }

    /// The attempt failed (it is already counted): audits it, and the lock
    /// it set off if any.
    pub(super) async fn fail(
        &self,
        attempt: Attempt<'_>,
        peer: Option<PeerCredentials>,
        action: AccountAction,
        subject: &AttemptKey,
        reason: &str,
    ) {
        let locked = attempt.locks().iter().any(|key| key == subject);
        drop(attempt);
        let subject = subject.username();
        self.record(Actor::peer(peer), action, subject, Some(reason.to_owned()))
            .await;
        if locked {
            self.record(
                Actor::peer(peer),
                AccountAction::AccountLocked,
                subject,
                None,
            )
            .await;
        }
    }

    pub(super) async fn restore_failure_counters(&self) -> Result<(), AuthError> {
        let counters = self
            .store
            .all_auth_failures()
            .await?
            .iter()
            .filter_map(|row| {
                Some(Counter {
                    key: key_of(row)?,
                    consecutive: u32::try_from(row.consecutive).unwrap_or(u32::MAX),
                    last_failure: UnixMillis(row.last_failure),
                    locked_until: row.locked_until.map(UnixMillis),
                })
            })
            .collect();
        self.failures.restore(counters);
        Ok(())
    }
}
