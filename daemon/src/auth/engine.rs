//! The authentication engine: the state every auth flow shares, its start-up
//! (restoring sessions, opening bootstrap) and the helpers the flows use.
//!
//! Invariant: TOTP secrets exist in memory only while a flow uses them and
//! are sealed to (users, column, user id) at rest; sessions are restored from
//! the store at start and their last-seen times written back at shutdown.

use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use zeroize::Zeroizing;

use super::{
    challenges::ChallengeBook,
    error::AuthError,
    lockout::{AttemptKey, FailureTracker, LockoutPolicy},
    password::{HashCost, PasswordHashing},
    recovery::RecoveryCodes,
    role::Role,
    sessions::{Session, SessionPolicy, SessionStore},
    token::TokenHasher,
    totp::TotpSecret,
};
use crate::{
    audit::{AccountAction, Actor, AuditEvent, AuditLog},
    clock::{Clock, UnixMillis},
    config::AuthConfig,
    crypto::{KeyPurpose, MasterKey, SealContext, Sealer},
    store::{SessionRow, Store, UserChange, UserRow},
};

/// An account's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    /// Created; password and TOTP not yet confirmed.
    Enrolling,
    /// Can log in.
    Active,
    /// Cannot log in.
    Disabled,
}

impl UserState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Enrolling => "enrolling",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    fn parse(value: &str) -> Result<Self, AuthError> {
        match value {
            "enrolling" => Ok(Self::Enrolling),
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(AuthError::internal(
                "unknown user state in database",
                &other,
            )),
        }
    }
}

/// What frontends see of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// State.
    pub state: UserState,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Set while locked.
    pub locked_until: Option<UnixMillis>,
    /// The OS account PAM login checks, if linked.
    pub os_account: Option<String>,
}

/// A user row with its fields parsed.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub(super) row: UserRow,
    pub(super) role: Role,
    pub(super) state: UserState,
}

impl Account {
    pub(super) fn from_row(row: UserRow) -> Result<Self, AuthError> {
        let role = Role::from_str(&row.role)
            .map_err(|err| AuthError::internal("unknown role in database", &err))?;
        let state = UserState::parse(&row.state)?;
        Ok(Self { row, role, state })
    }
}

/// Which sealed TOTP column.
#[derive(Debug, Clone, Copy)]
pub(super) enum TotpColumn {
    Confirmed,
    Pending,
}

/// Shared state of every authentication flow.
#[derive(Debug)]
pub struct AuthEngine {
    pub(super) store: Store,
    pub(super) sealer: Sealer,
    pub(super) hashing: PasswordHashing,
    pub(super) recovery: RecoveryCodes,
    pub(super) tokens: TokenHasher,
    pub(super) sessions: SessionStore,
    pub(super) failures: FailureTracker,
    pub(super) audit: AuditLog,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: AuthConfig,
    pub(super) bootstrap: super::bootstrap::BootstrapGate,
    pub(super) challenges: ChallengeBook,
    pub(super) pam: Option<super::pam::PamAuthenticator>,
}

impl AuthEngine {
    /// Builds the engine, restores sessions, and opens bootstrap when no
    /// account exists yet (token file in `state_dir`).
    pub async fn start(
        store: Store,
        master: &MasterKey,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        config: &AuthConfig,
        state_dir: PathBuf,
    ) -> Result<Self, AuthError> {
        let cost = HashCost {
            iterations: config.argon2_iterations,
            memory_kib: config.argon2_memory_kib,
            parallelism: config.argon2_parallelism,
        };
        let hashing = PasswordHashing::new(cost, config.max_concurrent_hashes)
            .map_err(|err| AuthError::internal("password hashing unavailable", &err))?;
        let sealer = Sealer::new(&master.derive(KeyPurpose::Sealing))
            .map_err(|err| AuthError::internal("sealing key unusable", &err))?;
        let engine = Self {
            store,
            sealer,
            hashing,
            recovery: RecoveryCodes::new(&master.derive(KeyPurpose::RecoveryCodes)),
            tokens: TokenHasher::new(&master.derive(KeyPurpose::Tokens)),
            sessions: SessionStore::new(SessionPolicy {
                idle_timeout: Duration::from_secs(config.idle_timeout_secs),
                absolute_lifetime: Duration::from_secs(config.session_lifetime_secs),
                elevation_window: Duration::from_secs(config.elevation_window_secs),
                max_per_user: config.max_sessions_per_user,
            }),
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
            challenges: ChallengeBook::new()
                .map_err(|err| AuthError::internal("challenge book unavailable", &err))?,
            pam: super::pam::PamAuthenticator::from_config(&config.pam),
            audit,
            clock,
            config: config.clone(),
            bootstrap: super::bootstrap::BootstrapGate::new(state_dir.join("bootstrap.token")),
        };
        let decoy = engine.hashing.clone();
        tokio::spawn(async move {
            if let Err(err) = decoy.prepare_decoy().await {
                tracing::error!(error = %err, "decoy password hash not prepared");
            }
        });
        engine.restore_sessions().await?;
        engine.open_bootstrap_if_needed().await?;
        Ok(engine)
    }

    /// The live sessions.
    #[must_use]
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Live sessions, of one user or of all, oldest first.
    #[must_use]
    pub fn live_sessions(&self, user_id: Option<i64>) -> Vec<Session> {
        self.sessions.live(user_id, self.now())
    }

    /// How many Argon2 computations ran (for tests and metrics).
    #[must_use]
    pub fn hashes_computed(&self) -> u64 {
        self.hashing.computed()
    }

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
        let row = user_id.to_string();
        self.sealer
            .seal(&totp_context(column, &row), secret.expose())
            .map_err(|err| AuthError::internal("cannot seal TOTP secret", &err))
    }

    pub(super) fn open_totp(
        &self,
        user_id: i64,
        column: TotpColumn,
        sealed: &[u8],
    ) -> Result<TotpSecret, AuthError> {
        let row = user_id.to_string();
        let bytes: Zeroizing<Vec<u8>> = self
            .sealer
            .open(&totp_context(column, &row), sealed)
            .map_err(|err| AuthError::internal("cannot open sealed TOTP secret", &err))?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    /// Hashes `password` (already normalised) and stores it as the user's.
    pub(super) async fn store_password(
        &self,
        user_id: i64,
        password: Zeroizing<String>,
    ) -> Result<(), AuthError> {
        let phc = self
            .hashing
            .hash(password)
            .await
            .map_err(|err| AuthError::internal("hashing failed", &err))?;
        let change = UserChange {
            password_phc: Some(&phc),
            ..UserChange::default()
        };
        self.store
            .update_user(user_id, &change, self.now().0)
            .await?;
        Ok(())
    }

    /// The profile of `account`, with its recovery-code count and lock.
    pub(super) async fn profile(&self, account: &Account) -> Result<UserProfile, AuthError> {
        let codes_left = self
            .store
            .unused_recovery_codes(account.row.id)
            .await?
            .len();
        let key = AttemptKey::Account(account.row.username.clone());
        let locked_until = self.failures.locked_until(&key, self.now());
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

    /// Ends every session — the compromise response: everyone
    /// re-authenticates. Returns how many ended.
    pub async fn revoke_all_sessions(&self, reason: &str) -> Result<usize, AuthError> {
        let ended = self.sessions.remove_all();
        self.end_sessions(&ended).await?;
        self.record(
            Actor::daemon(),
            AccountAction::SessionsRevoked,
            None,
            Some(format!("all {} sessions: {reason}", ended.len())),
        )
        .await;
        Ok(ended.len())
    }

    /// Ends sessions in memory and in the store.
    pub(super) async fn end_sessions(&self, ended: &[Session]) -> Result<(), AuthError> {
        let ids: Vec<String> = ended.iter().map(|s| s.id.clone()).collect();
        self.store.delete_sessions(&ids).await?;
        Ok(())
    }

    pub(super) async fn save_session(
        &self,
        token_hash: &[u8; 32],
        session: &Session,
    ) -> Result<(), AuthError> {
        self.store
            .save_session(&SessionRow {
                id: session.id.clone(),
                token_hash: token_hash.to_vec(),
                user_id: session.user_id,
                peer_uid: i64::from(session.peer_uid),
                created_at: session.created_at.0,
                last_seen_at: session.last_seen.0,
                elevated_until: session.elevated_until.map(|u| u.0),
            })
            .await?;
        Ok(())
    }

    async fn restore_sessions(&self) -> Result<(), AuthError> {
        let now = self.now();
        let mut stale = Vec::new();
        for row in self.store.all_sessions().await? {
            let owner = self
                .store
                .user_by_id(row.user_id)
                .await?
                .map(Account::from_row)
                .transpose()?;
            let (Some(owner), Ok(token_hash)) =
                (owner, <[u8; 32]>::try_from(row.token_hash.as_slice()))
            else {
                stale.push(row.id);
                continue;
            };
            let session = Session {
                id: row.id.clone(),
                user_id: row.user_id,
                username: owner.row.username.clone(),
                role: owner.role,
                peer_uid: u32::try_from(row.peer_uid).unwrap_or(u32::MAX),
                created_at: UnixMillis(row.created_at),
                last_seen: UnixMillis(row.last_seen_at),
                elevated_until: row.elevated_until.map(UnixMillis),
            };
            let (idle_end, lifetime_end) = self.sessions.expiries(&session);
            if owner.state != UserState::Active || now >= idle_end || now >= lifetime_end {
                stale.push(row.id);
            } else {
                self.sessions.restore(token_hash, session);
            }
        }
        self.store.delete_sessions(&stale).await?;
        Ok(())
    }

    /// Writes every session's last-seen time to the store (at shutdown).
    pub async fn persist_sessions(&self) {
        for (token_hash, session) in self.sessions.snapshot() {
            if let Err(err) = self.save_session(&token_hash, &session).await {
                tracing::error!(error = %err, "session not persisted");
            }
        }
    }
}

fn totp_context(column: TotpColumn, row: &str) -> SealContext<'_> {
    SealContext {
        table: "users",
        column: match column {
            TotpColumn::Confirmed => "totp_secret",
            TotpColumn::Pending => "totp_pending_secret",
        },
        row,
    }
}
