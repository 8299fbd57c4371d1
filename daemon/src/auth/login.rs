//! Login with password and a second factor, elevation, and logout.
//!
//! Invariant: throttling is checked (and the attempt counted) before any
//! hashing; an unknown, disabled or enrolling account costs a full password
//! verification and fails exactly like a wrong password; a TOTP step or
//! recovery code is consumed by a conditional update, so concurrent replays
//! cannot both win; a login's session carries the account as its login read
//! it, and is refused if the account changed meanwhile.

use std::sync::Arc;

use super::{
    account::{Account, TotpColumn, UserProfile},
    elevation::ElevationMethod,
    error::AuthError,
    input,
    lockout::AttemptKey,
    password::{Verification, normalize},
    recovery::MAX_CODE_INPUT,
    session_keeping::LoginOutcome,
    sessions::Session,
    shared::AuthCore,
};
use crate::{
    audit::{AccountAction, Actor},
    transport::PeerCredentials,
};

/// The second proof of identity at login or elevation.
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the single-use recovery codes.
    RecoveryCode(&'a str),
}

impl std::fmt::Debug for SecondFactor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Totp(<redacted>)",
            Self::RecoveryCode(_) => "RecoveryCode(<redacted>)",
        })
    }
}

impl SecondFactor<'_> {
    fn method(self) -> &'static str {
        match self {
            Self::Totp(_) => "password+totp",
            Self::RecoveryCode(_) => "password+recovery_code",
        }
    }

    fn check_input(self) -> Result<(), AuthError> {
        match self {
            Self::Totp(code) => input::totp_code(code),
            Self::RecoveryCode(code) => input::bounded("recovery_code", code, MAX_CODE_INPUT),
        }
    }
}

/// What a person re-proves to elevate a session: a TOTP code alone, or the
/// password with a TOTP or recovery code (needed to change credentials).
#[derive(Clone, Copy)]
pub struct ElevationProof<'a> {
    /// The account password, if re-proved.
    pub password: Option<&'a str>,
    /// The second factor.
    pub factor: SecondFactor<'a>,
}

impl std::fmt::Debug for ElevationProof<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevationProof")
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("factor", &self.factor)
            .finish()
    }
}

impl ElevationProof<'_> {
    fn method(&self) -> Result<ElevationMethod, AuthError> {
        match (self.password.is_some(), self.factor) {
            (false, SecondFactor::Totp(_)) => Ok(ElevationMethod::Totp),
            (true, SecondFactor::Totp(_)) => Ok(ElevationMethod::PasswordTotp),
            (true, SecondFactor::RecoveryCode(_)) => Ok(ElevationMethod::PasswordRecoveryCode),
            (false, SecondFactor::RecoveryCode(_)) => Err(AuthError::InvalidInput {
                field: "password",
                reason: "elevating with a recovery code needs the password too".to_owned(),
            }),
        }
    }
}

/// Password + second factor logins, elevation with them, logout and the
/// caller's own profile.
#[derive(Debug)]
pub struct Logins {
    core: Arc<AuthCore>,
}

impl Logins {
    pub(super) fn new(core: Arc<AuthCore>) -> Self {
        Self { core }
    }

    /// Logs in with password and a second factor.
    pub async fn login(
        &self,
        peer: PeerCredentials,
        username: &str,
        password: &str,
        factor: SecondFactor<'_>,
    ) -> Result<LoginOutcome, AuthError> {
        let began = self.core.sessions.login_epoch();
        let username = input::username(username)?;
        input::password("password", password)?;
        factor.check_input()?;
        let key = AttemptKey::Account(username.to_owned());
        let attempt = self.core.throttle(&key, Some(peer)).await?;
        let active = self.core.active_account(username).await?;
        let stored = active.as_ref().and_then(|a| a.row.password_phc.clone());
        let verification = self
            .core
            .hashing
            .verify(stored, normalize(password))
            .await
            .map_err(|err| AuthError::internal("password verification failed", &err))?;
        let (Some(account), Verification::Match { needs_rehash }) = (active, verification) else {
            self.core
                .fail(
                    attempt,
                    Some(peer),
                    AccountAction::LoginFailed,
                    &key,
                    "password",
                )
                .await;
            return Err(AuthError::BadCredentials);
        };
        if !self.second_factor_holds(&account, factor).await? {
            let method = factor.method();
            self.core
                .fail(
                    attempt,
                    Some(peer),
                    AccountAction::LoginFailed,
                    &key,
                    method,
                )
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.core.succeed(attempt).await;
        if needs_rehash {
            self.rehash(&account, password).await;
        }
        // A password login also lifts a biometric lock (the fallback succeeded).
        self.core.forget_biometric_failures(username).await;
        self.core
            .finish_login(&account, peer, factor.method(), began)
            .await
    }

    async fn second_factor_holds(
        &self,
        account: &Account,
        factor: SecondFactor<'_>,
    ) -> Result<bool, AuthError> {
        match factor {
            SecondFactor::Totp(code) => self.consume_totp(account, code).await,
            SecondFactor::RecoveryCode(code) => {
                let unused = self
                    .core
                    .store
                    .unused_recovery_codes(account.row.id)
                    .await?;
                let hashes: Vec<Vec<u8>> = unused.iter().map(|(_, hash)| hash.clone()).collect();
                let Some(index) = self.core.recovery.find(code, &hashes) else {
                    return Ok(false);
                };
                let (slot, hash) = &unused[index];
                let used = self
                    .core
                    .store
                    .use_recovery_code(account.row.id, *slot, hash, self.core.now().0)
                    .await?;
                if used {
                    let name = account.row.username.as_str();
                    let left = format!("{} left", hashes.len() - 1);
                    self.core
                        .record(
                            Actor::user(None, name),
                            AccountAction::RecoveryCodeUsed,
                            Some(name),
                            Some(left),
                        )
                        .await;
                }
                Ok(used)
            }
        }
    }

    /// Checks a TOTP code against the confirmed secret and consumes its step.
    pub(super) async fn consume_totp(
        &self,
        account: &Account,
        code: &str,
    ) -> Result<bool, AuthError> {
        let Some(sealed) = &account.row.totp_secret else {
            return Ok(false);
        };
        let secret = self
            .core
            .open_totp(account.row.id, TotpColumn::Confirmed, sealed)?;
        let step = secret
            .accept(code, self.core.now(), account.row.totp_last_step)
            .map_err(|err| AuthError::internal("TOTP check failed", &err))?;
        match step {
            Some(step) => Ok(self
                .core
                .store
                .advance_totp_step(account.row.id, step)
                .await?),
            None => Ok(false),
        }
    }

    /// Stores the password again at the configured cost, unless the
    /// account changed since this login read it.
    async fn rehash(&self, account: &Account, password: &str) {
        let Some(old) = account.row.password_phc.as_deref() else {
            return;
        };
        let rehashed = match self.core.hashing.hash(normalize(password)).await {
            Ok(phc) => {
                self.core
                    .store
                    .rehash_password(account.row.id, old, &phc, account.row.generation)
                    .await
            }
            Err(err) => {
                tracing::error!(error = %err, "password rehash failed");
                return;
            }
        };
        if let Err(err) = rehashed {
            tracing::error!(error = %err, "password rehash not stored");
        }
    }

    /// Re-proves identity (a TOTP code, or the password with a TOTP or
    /// recovery code); elevates the session by that method.
    pub async fn elevate(
        &self,
        session: &Session,
        peer: PeerCredentials,
        proof: ElevationProof<'_>,
    ) -> Result<Session, AuthError> {
        let method = proof.method()?;
        if let Some(password) = proof.password {
            input::password("password", password)?;
        }
        proof.factor.check_input()?;
        let key = AttemptKey::Account(session.username.clone());
        let attempt = self.core.throttle(&key, Some(peer)).await?;
        let account = self.core.account(&session.username).await?;
        let password_holds = match proof.password {
            None => true,
            Some(password) => matches!(
                self.core
                    .hashing
                    .verify(account.row.password_phc.clone(), normalize(password))
                    .await
                    .map_err(|err| AuthError::internal("password verification failed", &err))?,
                Verification::Match { .. }
            ),
        };
        if !password_holds || !self.second_factor_holds(&account, proof.factor).await? {
            let reason = method.name();
            self.core
                .fail(
                    attempt,
                    Some(peer),
                    AccountAction::ElevationFailed,
                    &key,
                    &reason,
                )
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.core.succeed(attempt).await;
        self.core.grant_elevation(session, peer, method).await
    }

    /// Ends the caller's session.
    pub async fn logout(&self, session: &Session, peer: PeerCredentials) -> Result<(), AuthError> {
        self.core.end_session(&session.id).await?;
        let name = session.username.as_str();
        self.core
            .record(
                Actor::user(Some(peer), name),
                AccountAction::LoggedOut,
                Some(name),
                None,
            )
            .await;
        Ok(())
    }

    /// The caller's profile.
    pub async fn who_am_i(&self, session: &Session) -> Result<UserProfile, AuthError> {
        // Read the version first: a write that ends after it changes it.
        let version = self.core.store.accounts_version();
        let mut profile = match self.core.profiles.get(&session.username, version) {
            Some(profile) => profile,
            None => {
                let account = self.core.account(&session.username).await?;
                let profile = self.core.profile(&account).await?;
                self.core.profiles.put(version, &profile);
                profile
            }
        };
        profile.locked_until = self.core.locked_until(&profile.username);
        Ok(profile)
    }
}
