//! What every authentication flow shares: the store, the keys derived for
//! sealing and hashing, the live sessions, the brute-force counters, the
//! audit log and the clock, with the account helpers built on them.
//!
//! Invariant: TOTP secrets exist in memory only while a flow uses them and
//! are sealed to (users, column, user id) at rest; flows reach shared state
//! only through this type, never through one another.

use std::{sync::Arc, time::Duration};

use zeroize::Zeroizing;

use super::{
    account::{self, Account, TotpColumn, UserProfile, UserState},
    error::AuthError,
    lockout::{AttemptKey, FailureTracker, LockoutPolicy},
    password::{HashCost, PasswordHashing},
    profiles::ProfileCache,
    recovery::RecoveryCodes,
    sessions::{SessionPolicy, SessionStore},
    token::TokenHasher,
    totp::TotpSecret,
};
use crate::{
    audit::{AccountAction, Actor, AuditEvent, AuditLog},
    clock::{Clock, UnixMillis},
    config::AuthConfig,
    crypto::{KeyPurpose, KeyRing, Sealer},
    store::{Store, UserChange},
    transport::{PeerCredentials, uid_shares::UidShares},
};

/// New-password strength estimates running at once per peer uid and in
/// all (see [`AuthCore::check_new_password`]).
const STRENGTH_CHECKS_PER_UID: usize = 1;
const MAX_STRENGTH_CHECKS: usize = 4;

/// The state the authentication flows share.
#[derive(Debug)]
pub(super) struct AuthCore {
    pub(super) store: Store,
    pub(super) sealer: Sealer,
    pub(super) hashing: PasswordHashing,
    /// Places of new-password strength estimates running (per peer uid).
    pub(super) strength_checks: Arc<UidShares>,
    pub(super) recovery: RecoveryCodes,
    pub(super) tokens: TokenHasher,
    pub(super) sessions: SessionStore,
    pub(super) failures: FailureTracker,
    pub(super) audit: AuditLog,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: AuthConfig,
    pub(super) profiles: ProfileCache,
}

impl AuthCore {
    /// Derives the keys and builds the shared state; restores nothing yet.
    pub(super) fn new(
        store: Store,
        keys: &KeyRing,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        config: &AuthConfig,
    ) -> Result<Self, AuthError> {
        let cost = HashCost {
            iterations: config.argon2_iterations,
            memory_kib: config.argon2_memory_kib,
            parallelism: config.argon2_parallelism,
        };
        let hashing = PasswordHashing::new(cost, config.max_concurrent_hashes)
            .map_err(|err| AuthError::internal("password hashing unavailable", &err))?;
        let sealer = Sealer::new(&keys.derive(KeyPurpose::Sealing))
            .map_err(|err| AuthError::internal("sealing key unusable", &err))?;
        Ok(Self {
            store,
            sealer,
            hashing,
            strength_checks: UidShares::new(STRENGTH_CHECKS_PER_UID, MAX_STRENGTH_CHECKS),
            recovery: RecoveryCodes::new(&keys.derive(KeyPurpose::RecoveryCodes)),
            tokens: TokenHasher::new(&keys.derive(KeyPurpose::Tokens)),
            sessions: SessionStore::new(
                SessionPolicy {
                    idle_timeout: Duration::from_secs(config.idle_timeout_secs),
                    absolute_lifetime: Duration::from_secs(config.session_lifetime_secs),
                    elevation_window: Duration::from_secs(config.elevation_window_secs),
                    max_per_user: config.max_sessions_per_user,
                },
                Arc::clone(&clock),
            ),
            failures: FailureTracker::new(
                LockoutPolicy::accounts().locking_after(
                    config.account_lock_after,
                    Duration::from_secs(config.lock_secs),
                ),
                LockoutPolicy::peers().locking_after(
                    config.peer_lock_after,
                    Duration::from_secs(config.lock_secs),
                ),
                LockoutPolicy::biometric(),
            ),
            profiles: ProfileCache::default(),
            audit,
            clock,
            config: config.clone(),
        })
    }

    /// Now, by the injected clock.
    pub(super) fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    pub(super) async fn record(
        &self,
        actor: Actor,
        action: AccountAction,
        subject: Option<&str>,
        detail: Option<String>,
    ) {
        let event = AuditEvent::Account {
            action,
            subject: subject.map(str::to_owned),
            detail,
        };
        self.audit.record_or_log(actor, event).await;
    }

    /// The account named `username` if it exists and can log in; `None` for
    /// unknown, enrolling and disabled accounts alike.
    pub(super) async fn active_account(
        &self,
        username: &str,
    ) -> Result<Option<Account>, AuthError> {
        let row = self.store.user_by_name(username).await?;
        let account = row.map(Account::from_row).transpose()?;
        Ok(account.filter(|account| account.state == UserState::Active))
    }

    pub(super) async fn account(&self, username: &str) -> Result<Account, AuthError> {
        let row = self.store.user_by_name(username).await?;
        row.map(Account::from_row)
            .transpose()?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))
    }

    pub(super) fn seal_totp(
        &self,
        user_id: i64,
        column: TotpColumn,
        secret: &TotpSecret,
    ) -> Result<Vec<u8>, AuthError> {
        account::seal_totp(&self.sealer, user_id, column, secret)
    }

    pub(super) fn open_totp(
        &self,
        user_id: i64,
        column: TotpColumn,
        sealed: &[u8],
    ) -> Result<TotpSecret, AuthError> {
        account::open_totp(&self.sealer, user_id, column, sealed)
    }

    /// `password` NFKC-normalised if the policy accepts it as `username`'s
    /// new password. The strength estimate is costly for crafted input
    /// ([`PasswordHashing::check_new`]): each peer uid runs one at a time
    /// and all together four, refused beyond (never queued), each place held
    /// until its estimate ends.
    pub(super) async fn check_new_password(
        &self,
        peer: Option<PeerCredentials>,
        username: &str,
        password: &str,
    ) -> Result<Zeroizing<String>, AuthError> {
        let place = self
            .strength_checks
            .take(peer.map_or(u32::MAX, |peer| peer.uid))
            .map_err(|_| AuthError::PasswordCheckBusy)?;
        self.hashing
            .check_new(place, username, password)
            .await
            .map_err(|err| AuthError::internal("the password check failed", &err))?
            .map_err(AuthError::PasswordPolicy)
    }

    /// Hashes `password` (already normalised) and stores it as the user's;
    /// a credential change (`replaces`) also raises the account's
    /// generation. Returns the generation afterwards.
    pub(super) async fn store_password(
        &self,
        user_id: i64,
        password: Zeroizing<String>,
        replaces: bool,
    ) -> Result<i64, AuthError> {
        let phc = self
            .hashing
            .hash(password)
            .await
            .map_err(|err| AuthError::internal("hashing failed", &err))?;
        let change = UserChange {
            password_phc: Some(&phc),
            bump_generation: replaces,
            ..UserChange::default()
        };
        self.update_account(user_id, &change).await
    }

    /// Applies `change` to user `user_id`; returns the generation afterwards.
    pub(super) async fn update_account(
        &self,
        user_id: i64,
        change: &UserChange<'_>,
    ) -> Result<i64, AuthError> {
        self.store
            .update_user(user_id, change, self.now().0)
            .await?
            .ok_or_else(|| AuthError::WrongState("the account was deleted meanwhile".to_owned()))
    }

    /// Until when `username`'s account is locked, if it is (live, never cached).
    pub(super) fn locked_until(&self, username: &str) -> Option<UnixMillis> {
        let key = AttemptKey::Account(username.to_owned());
        self.failures.locked_until(&key, self.now())
    }

    /// The profile of `account`, with its recovery-code count and lock.
    pub(super) async fn profile(&self, account: &Account) -> Result<UserProfile, AuthError> {
        let codes_left = self
            .store
            .unused_recovery_codes(account.row.id)
            .await?
            .len();
        let locked_until = self.locked_until(&account.row.username);
        Ok(UserProfile {
            id: account.row.id,
            username: account.row.username.clone(),
            role: account.role,
            state: account.state,
            created_at: UnixMillis(account.row.created_at),
            recovery_codes_left: u32::try_from(codes_left).unwrap_or(u32::MAX),
            locked_until,
            os_account: self.store.os_account(account.row.id).await?,
        })
    }
}
