//! The authentication engine: a thin front over the flows (logins,
//! enrolment, account administration, own credentials, device keys, PAM), each its own type
//! holding the shared core plus only its own state; start-up restores what
//! they share before any flow is reachable.
//!
//! Invariant: nothing is served before the stored sessions and failure
//! counters are back in memory and bootstrap is open (when no account
//! exists); the front adds no behaviour of its own beyond composing flows.

use std::{path::PathBuf, sync::Arc};

pub use super::account::{UserProfile, UserState};
use super::{
    admin::AccountAdmin,
    bootstrap::Enrolment,
    bootstrap_gate::BootstrapGate,
    challenges::ChallengeBook,
    device_keys::{DeviceKeys, LoginMethod},
    error::AuthError,
    input,
    login::Logins,
    own_credentials::OwnCredentials,
    pam_flows::PamLogins,
    sessions::{Session, SessionStore},
    shared::AuthCore,
};
use crate::{
    audit::AuditLog,
    clock::{Clock, UnixMillis},
    config::AuthConfig,
    crypto::KeyRing,
    store::Store,
    transport::PeerCredentials,
};

/// Every authentication flow, started together.
#[derive(Debug)]
pub struct AuthEngine {
    core: Arc<AuthCore>,
    logins: Logins,
    enrolment: Enrolment,
    admin: AccountAdmin,
    own_credentials: OwnCredentials,
    device_keys: DeviceKeys,
    pam: PamLogins,
}

impl AuthEngine {
    /// The flows' shared core (tests take its places directly).
    #[cfg(test)]
    pub(super) fn core(&self) -> &AuthCore {
        &self.core
    }

    /// Builds the flows, restores sessions and failure counters, and opens
    /// bootstrap when no account exists yet (token file in `state_dir`).
    pub async fn start(
        store: Store,
        keys: &KeyRing,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        config: &AuthConfig,
        state_dir: PathBuf,
    ) -> Result<Self, AuthError> {
        let core = Arc::new(AuthCore::new(store, keys, audit, clock, config)?);
        let challenges = ChallengeBook::new()
            .map_err(|err| AuthError::internal("challenge book unavailable", &err))?;
        let bootstrap = BootstrapGate::new(state_dir.join("bootstrap.token"));
        let engine = Self {
            logins: Logins::new(Arc::clone(&core)),
            enrolment: Enrolment::new(Arc::clone(&core), bootstrap),
            admin: AccountAdmin::new(Arc::clone(&core)),
            own_credentials: OwnCredentials::new(Arc::clone(&core)),
            device_keys: DeviceKeys::new(Arc::clone(&core), challenges),
            pam: PamLogins::new(Arc::clone(&core), &config.pam),
            core,
        };
        let decoy = engine.core.hashing.clone();
        tokio::spawn(async move {
            if let Err(err) = decoy.prepare_decoy().await {
                tracing::error!(error = %err, "decoy password hash not prepared");
            }
        });
        engine.core.restore_sessions().await?;
        engine.core.restore_failure_counters().await?;
        engine.enrolment.open_bootstrap_if_needed().await?;
        Ok(engine)
    }

    /// Password + second factor logins, elevation, logout, who am I.
    #[must_use]
    pub fn logins(&self) -> &Logins {
        &self.logins
    }

    /// Bootstrap and enrolment.
    #[must_use]
    pub fn enrolment(&self) -> &Enrolment {
        &self.enrolment
    }

    /// Account administration (users, roles, sessions of others).
    #[must_use]
    pub fn admin(&self) -> &AccountAdmin {
        &self.admin
    }

    /// A person's changes to their own password, TOTP and recovery codes.
    #[must_use]
    pub fn own_credentials(&self) -> &OwnCredentials {
        &self.own_credentials
    }

    /// Device-bound keys.
    #[must_use]
    pub fn device_keys(&self) -> &DeviceKeys {
        &self.device_keys
    }

    /// PAM biometric login and OS-account links.
    #[must_use]
    pub fn pam(&self) -> &PamLogins {
        &self.pam
    }

    /// Login methods for `username` as `peer` may use them, most preferred
    /// first. A biometric method is named only to the OS user it belongs to
    /// (the uid that registered the device key; the OS account PAM checks) or
    /// to root; everyone else — and every unknown or inactive user — gets
    /// the answer of a user without biometrics, so the list reveals nothing
    /// about other people's set-up.
    pub async fn login_methods(
        &self,
        username: &str,
        peer: PeerCredentials,
    ) -> Result<Vec<LoginMethod>, AuthError> {
        let username = input::username(username)?;
        let mut methods = Vec::new();
        if let Some(account) = self.core.active_account(username).await? {
            if self.device_keys.usable_by(account.row.id, peer).await? {
                methods.push(LoginMethod::DeviceKey);
            }
            if self
                .pam
                .pam_usable_by(account.row.id, peer)
                .await?
                .is_some()
            {
                methods.push(LoginMethod::PamBiometric);
            }
        }
        methods.push(LoginMethod::PasswordTotp);
        Ok(methods)
    }

    /// The session `token` names, if live and used from `peer_uid`; counts
    /// as activity.
    pub fn authenticate(&self, token: &str, peer_uid: u32) -> Result<Session, AuthError> {
        self.core.authenticate(token, peer_uid)
    }

    /// `session` again as it is now (ended, expired, elevation lapsed).
    pub fn recheck(&self, session: &Session, peer_uid: u32) -> Result<Session, AuthError> {
        self.core.recheck(session, peer_uid)
    }

    /// Ends every session (a quarantine does this); returns how many ended.
    pub async fn revoke_all_sessions(&self, reason: &str) -> Result<usize, AuthError> {
        self.core.revoke_all_sessions(reason).await
    }

    /// Writes the live sessions' activity to the store (at shutdown).
    pub async fn persist_sessions(&self) {
        self.core.persist_sessions().await;
    }

    /// The live sessions.
    #[must_use]
    pub fn sessions(&self) -> &SessionStore {
        &self.core.sessions
    }

    /// Live sessions, of one user or of all, oldest first.
    #[must_use]
    pub fn live_sessions(&self, user_id: Option<i64>) -> Vec<Session> {
        self.core.sessions.live(user_id, self.now())
    }

    /// How many Argon2 computations ran (for tests and metrics).
    #[must_use]
    pub fn hashes_computed(&self) -> u64 {
        self.core.hashing.computed()
    }

    /// Now, by the engine's (injected) clock.
    #[must_use]
    pub fn now(&self) -> UnixMillis {
        self.core.now()
    }
}
