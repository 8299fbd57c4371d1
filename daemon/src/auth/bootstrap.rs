//! First run and enrolment: the bootstrap token, creating the first
//! super-admin, and a person setting up their own password and TOTP.
//!
//! Invariant: bootstrap works only while no established (active or disabled)
//! account exists and only with the token from the root-only file, once; an
//! account becomes active only after a correct code from its new TOTP secret;
//! recovery codes are shown exactly once, at that moment.

use std::{io::Write, sync::Arc, time::Duration};

use zeroize::Zeroizing;

use super::{
    account::Account,
    bootstrap_gate::BootstrapGate,
    error::AuthError,
    input,
    lockout::AttemptKey,
    role::Role,
    shared::AuthCore,
    token::{MAX_TOKEN_CHARS, SecretToken, TokenKind},
    totp::TotpEnrolment,
};
use crate::{
    audit::{AccountAction, Actor},
    store::UserChange,
    transport::PeerCredentials,
};

/// A started enrolment: the token to confirm with and the TOTP enrolment.
#[derive(Debug)]
pub struct EnrollmentStarted {
    /// Send back with the confirming code.
    pub enrollment_token: SecretToken,
    /// What the authenticator app needs.
    pub totp: TotpEnrolment,
}

/// The first super-admin (bootstrap) and people enrolling themselves.
#[derive(Debug)]
pub struct Enrolment {
    core: Arc<AuthCore>,
    bootstrap: BootstrapGate,
}

impl Enrolment {
    pub(super) fn new(core: Arc<AuthCore>, bootstrap: BootstrapGate) -> Self {
        Self { core, bootstrap }
    }

    pub(super) async fn open_bootstrap_if_needed(&self) -> Result<(), AuthError> {
        if self
            .core
            .store
            .count_users_in(&["active", "disabled"])
            .await?
            > 0
        {
            return Ok(());
        }
        let removed = self
            .core
            .store
            .delete_stale_enrolling_users(self.core.now().0, true)
            .await?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed accounts left from an unfinished bootstrap"
            );
        }
        let token = SecretToken::generate(TokenKind::Bootstrap)
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let hash = self
            .core
            .tokens
            .hash(TokenKind::Bootstrap, token.expose())
            .ok_or_else(|| AuthError::internal("bootstrap token not hashable", &"length"))?;
        let path = self.bootstrap.path();
        let written = crate::crypto::private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .and_then(|mut file| file.write_all(format!("{}\n", token.expose()).as_bytes()));
        written
            .map_err(|err| AuthError::internal("cannot write the bootstrap token file", &err))?;
        let expires = self.core.now().plus(Duration::from_secs(
            self.core.config.bootstrap_token_ttl_secs,
        ));
        self.bootstrap.open(hash, expires);
        tracing::warn!(
            token_file = %path.display(),
            expires_in_secs = self.core.config.bootstrap_token_ttl_secs,
            "no users yet: create the first super-admin with the bootstrap token in this file"
        );
        Ok(())
    }

    /// Creates the first super-admin (pending until its TOTP is confirmed).
    pub async fn bootstrap(
        &self,
        peer: Option<PeerCredentials>,
        bootstrap_token: &str,
        username: &str,
        password: &str,
    ) -> Result<EnrollmentStarted, AuthError> {
        input::bounded("bootstrap_token", bootstrap_token, MAX_TOKEN_CHARS)?;
        let username = input::username(username)?;
        input::password("password", password)?;
        let now = self.core.now();
        let token_hash = self.core.tokens.hash(TokenKind::Bootstrap, bootstrap_token);
        if !token_hash.is_some_and(|hash| self.bootstrap.matches(&hash, now)) {
            return Err(AuthError::BadToken("bootstrap"));
        }
        if self
            .core
            .store
            .count_users_in(&["active", "disabled"])
            .await?
            > 0
        {
            return Err(AuthError::BootstrapClosed);
        }
        let password = self
            .core
            .check_new_password(peer, username, password)
            .await?;
        let phc = self
            .core
            .hashing
            .hash(password)
            .await
            .map_err(|err| AuthError::internal("hashing failed", &err))?;
        if !token_hash.is_some_and(|hash| self.bootstrap.take_if_valid(&hash, now)) {
            return Err(AuthError::BadToken("bootstrap"));
        }
        self.core
            .store
            .delete_stale_enrolling_users(now.0, true)
            .await?;
        let started = self
            .core
            .create_enrolling(username, Role::SuperAdmin, Some(&phc))
            .await?;
        let account = self.core.account(username).await?;
        let totp = self.core.start_totp(&account).await?;
        self.core
            .record(
                Actor::user(peer, username),
                AccountAction::BootstrapStarted,
                Some(username),
                None,
            )
            .await;
        Ok(EnrollmentStarted {
            enrollment_token: started.0,
            totp,
        })
    }

    async fn enrolling_account(&self, enrollment_token: &str) -> Result<Account, AuthError> {
        input::bounded("enrollment_token", enrollment_token, MAX_TOKEN_CHARS)?;
        let hash = self
            .core
            .tokens
            .hash(TokenKind::Enrollment, enrollment_token)
            .ok_or(AuthError::BadToken("enrollment"))?;
        let row = self
            .core
            .store
            .user_by_enrollment_token(&hash, self.core.now().0)
            .await?;
        row.map(Account::from_row)
            .transpose()?
            .ok_or(AuthError::BadToken("enrollment"))
    }

    /// An invited person sets their password and gets a TOTP enrolment.
    pub async fn start_enrollment(
        &self,
        peer: Option<PeerCredentials>,
        enrollment_token: &str,
        password: &str,
    ) -> Result<TotpEnrolment, AuthError> {
        input::password("password", password)?;
        let account = self.enrolling_account(enrollment_token).await?;
        let password = self
            .core
            .check_new_password(peer, &account.row.username, password)
            .await?;
        self.core
            .store_password(account.row.id, password, false)
            .await?;
        let totp = self.core.start_totp(&account).await?;
        let username = account.row.username.as_str();
        self.core
            .record(
                Actor::user(peer, username),
                AccountAction::EnrollmentStarted,
                Some(username),
                None,
            )
            .await;
        Ok(totp)
    }

    /// Confirms the pending TOTP with a code; activates the account and
    /// returns its recovery codes (shown once).
    pub async fn confirm_enrollment(
        &self,
        peer: Option<PeerCredentials>,
        enrollment_token: &str,
        totp_code: &str,
    ) -> Result<Vec<Zeroizing<String>>, AuthError> {
        input::totp_code(totp_code)?;
        let account = self.enrolling_account(enrollment_token).await?;
        let (Some(_), Some(sealed)) = (&account.row.password_phc, &account.row.totp_pending_secret)
        else {
            return Err(AuthError::WrongState(
                "set a password first (StartEnrollment)".to_owned(),
            ));
        };
        let key = AttemptKey::Account(account.row.username.clone());
        let attempt = self.core.throttle(&key, peer).await?;
        let codes = self
            .core
            .recovery
            .issue()
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let activate = UserChange {
            state: Some("active"),
            enrollment: Some(None),
            ..UserChange::default()
        };
        if self
            .core
            .promote_pending_totp(&account, sealed, totp_code, activate)
            .await?
            .is_none()
        {
            self.core
                .fail(
                    attempt,
                    peer,
                    AccountAction::LoginFailed,
                    &key,
                    "enrolment code wrong",
                )
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.core.succeed(attempt).await;
        self.core
            .store
            .replace_recovery_codes(account.row.id, &codes.hashes)
            .await?;
        let username = account.row.username.as_str();
        self.core
            .record(
                Actor::user(peer, username),
                AccountAction::EnrollmentCompleted,
                Some(username),
                None,
            )
            .await;
        Ok(codes.codes)
    }
}
