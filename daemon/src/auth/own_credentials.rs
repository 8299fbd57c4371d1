//! People changing their own credentials: password, TOTP secret, recovery
//! codes.
//!
//! Invariant: each change is proven by the factor it replaces or by an
//! elevation (the gate asks for one), raises the account's generation, and
//! ends the person's other sessions and any elevation of this session
//! obtained with the changed factor; audited.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{
    account::Account,
    admin::ActingUser,
    elevation::ElevationMethod,
    error::AuthError,
    input,
    lockout::AttemptKey,
    password::{Verification, normalize},
    shared::AuthCore,
    totp::TotpEnrolment,
};
use crate::{audit::AccountAction, store::UserChange};

/// A person's changes to their own credentials.
#[derive(Debug)]
pub struct OwnCredentials {
    core: Arc<AuthCore>,
}

impl OwnCredentials {
    pub(super) fn new(core: Arc<AuthCore>) -> Self {
        Self { core }
    }

    /// After the caller changed one of their own credentials (the account is
    /// now at `generation`): ends their other sessions and any elevation of
    /// this one that `clears` attributes to the changed factor; audited.
    async fn end_other_sessions(
        &self,
        by: ActingUser<'_>,
        account: &Account,
        generation: i64,
        clears: impl Fn(&ElevationMethod) -> bool,
        what: &str,
    ) -> Result<(), AuthError> {
        let ended = self
            .core
            .supersede(account, Some(generation), Some(by.session), clears)
            .await?;
        self.core
            .record(
                by.actor(),
                AccountAction::SessionsRevoked,
                Some(&by.session.username),
                Some(format!("{ended} other sessions ended: {what} changed")),
            )
            .await;
        Ok(())
    }

    /// Changes the caller's own password (current password required).
    pub async fn change_password(
        &self,
        by: ActingUser<'_>,
        current: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        input::password("current_password", current)?;
        input::password("new_password", new)?;
        let new = self
            .core
            .check_new_password(Some(by.peer), &by.session.username, new)
            .await?;
        let key = AttemptKey::Account(by.session.username.clone());
        let attempt = self.core.throttle(&key, Some(by.peer)).await?;
        let account = self.core.account(&by.session.username).await?;
        let verification = self
            .core
            .hashing
            .verify(account.row.password_phc.clone(), normalize(current))
            .await
            .map_err(|err| AuthError::internal("password verification failed", &err))?;
        if verification == Verification::Mismatch {
            self.core
                .fail(
                    attempt,
                    Some(by.peer),
                    AccountAction::LoginFailed,
                    &key,
                    "current password",
                )
                .await;
            return Err(AuthError::BadCredentials);
        }
        self.core.succeed(attempt).await;
        let generation = self.core.store_password(account.row.id, new, true).await?;
        self.core
            .record(
                by.actor(),
                AccountAction::PasswordChanged,
                Some(&account.row.username),
                None,
            )
            .await;
        self.end_other_sessions(
            by,
            &account,
            generation,
            ElevationMethod::proves_password,
            "password",
        )
        .await
    }

    /// Starts replacing the caller's TOTP secret.
    pub async fn start_totp_reenrollment(
        &self,
        by: ActingUser<'_>,
    ) -> Result<TotpEnrolment, AuthError> {
        let account = self.core.account(&by.session.username).await?;
        self.core.start_totp(&account).await
    }

    /// Confirms the new TOTP secret with a code from it.
    pub async fn confirm_totp_reenrollment(
        &self,
        by: ActingUser<'_>,
        code: &str,
    ) -> Result<(), AuthError> {
        input::totp_code(code)?;
        let key = AttemptKey::Account(by.session.username.clone());
        let attempt = self.core.throttle(&key, Some(by.peer)).await?;
        let account = self.core.account(&by.session.username).await?;
        let Some(sealed) = &account.row.totp_pending_secret else {
            return Err(AuthError::WrongState(
                "no TOTP re-enrolment in progress; start one first".to_owned(),
            ));
        };
        let replaces = UserChange {
            bump_generation: true,
            ..UserChange::default()
        };
        let Some(generation) = self
            .core
            .promote_pending_totp(&account, sealed, code, replaces)
            .await?
        else {
            self.core
                .fail(
                    attempt,
                    Some(by.peer),
                    AccountAction::ElevationFailed,
                    &key,
                    "new totp code",
                )
                .await;
            return Err(AuthError::BadCredentials);
        };
        self.core.succeed(attempt).await;
        self.core
            .record(
                by.actor(),
                AccountAction::TotpReenrolled,
                Some(&account.row.username),
                None,
            )
            .await;
        let totp_based = |method: &ElevationMethod| {
            matches!(
                method,
                ElevationMethod::Totp | ElevationMethod::PasswordTotp
            )
        };
        self.end_other_sessions(by, &account, generation, totp_based, "TOTP secret")
            .await
    }

    /// Replaces the caller's recovery codes; the old set stops working.
    pub async fn regenerate_recovery_codes(
        &self,
        by: ActingUser<'_>,
    ) -> Result<Vec<Zeroizing<String>>, AuthError> {
        let account = self.core.account(&by.session.username).await?;
        let codes = self
            .core
            .recovery
            .issue()
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        self.core
            .store
            .replace_recovery_codes(account.row.id, &codes.hashes)
            .await?;
        let replaces = UserChange {
            bump_generation: true,
            ..UserChange::default()
        };
        let generation = self.core.update_account(account.row.id, &replaces).await?;
        self.core
            .record(
                by.actor(),
                AccountAction::RecoveryCodesRegenerated,
                Some(&account.row.username),
                None,
            )
            .await;
        let code_based =
            |method: &ElevationMethod| *method == ElevationMethod::PasswordRecoveryCode;
        self.end_other_sessions(by, &account, generation, code_based, "recovery codes")
            .await?;
        Ok(codes.codes)
    }
}
