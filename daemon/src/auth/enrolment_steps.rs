//! The enrolment steps bootstrap, invitations and TOTP resets share: an
//! enrolling account with its one-time token, a pending TOTP secret, and
//! promoting that secret once a code from it is shown.
//!
//! Invariant: a pending TOTP secret becomes the account's only after a
//! correct code from it, in the same write that records the code's step.

use std::time::Duration;

use super::{
    account::{Account, TotpColumn},
    error::AuthError,
    role::Role,
    shared::AuthCore,
    token::{SecretToken, TokenKind},
    totp::{TotpEnrolment, TotpSecret},
};
use crate::{clock::UnixMillis, store::UserChange};

impl AuthCore {
    /// Creates an enrolling user with a one-time enrolment token.
    pub(super) async fn create_enrolling(
        &self,
        username: &str,
        role: Role,
        password_phc: Option<&str>,
    ) -> Result<(SecretToken, UnixMillis), AuthError> {
        let (token, hash, expires) = self.new_enrollment_token()?;
        let now = self.now().0;
        self.store
            .insert_enrolling_user(username, role.as_str(), password_phc, &hash, expires.0, now)
            .await
            .map_err(|err| match err {
                crate::store::StoreError::Database(sqlx::Error::Database(db))
                    if db.is_unique_violation() =>
                {
                    AuthError::UserExists(username.to_owned())
                }
                other => other.into(),
            })?;
        Ok((token, expires))
    }

    pub(super) fn new_enrollment_token(
        &self,
    ) -> Result<(SecretToken, [u8; 32], UnixMillis), AuthError> {
        let token = SecretToken::generate(TokenKind::Enrollment)
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let hash = self
            .tokens
            .hash(TokenKind::Enrollment, token.expose())
            .ok_or_else(|| AuthError::internal("enrolment token not hashable", &"length"))?;
        let expires = self
            .now()
            .plus(Duration::from_secs(self.config.enrollment_token_ttl_secs));
        Ok((token, hash, expires))
    }

    /// Generates a pending TOTP secret for `account` and returns its enrolment.
    pub(super) async fn start_totp(&self, account: &Account) -> Result<TotpEnrolment, AuthError> {
        let secret = TotpSecret::generate()
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        let sealed = self.seal_totp(account.row.id, TotpColumn::Pending, &secret)?;
        let change = UserChange {
            totp_pending_secret: Some(Some(&sealed)),
            ..UserChange::default()
        };
        self.update_account(account.row.id, &change).await?;
        secret
            .enrolment(&account.row.username)
            .map_err(|err| AuthError::internal("cannot build TOTP enrolment", &err))
    }

    /// Confirms a pending TOTP secret with `code`: on a match it becomes the
    /// account's secret (with the extra column changes in `also`) and the
    /// code's step is the last accepted one; returns the account's generation
    /// afterwards. A wrong code changes nothing and returns `None`.
    pub(super) async fn promote_pending_totp(
        &self,
        account: &Account,
        sealed_pending: &[u8],
        code: &str,
        also: UserChange<'_>,
    ) -> Result<Option<i64>, AuthError> {
        let secret = self.open_totp(account.row.id, TotpColumn::Pending, sealed_pending)?;
        let step = secret
            .accept(code, self.now(), None)
            .map_err(|err| AuthError::internal("TOTP check failed", &err))?;
        let Some(step) = step else {
            return Ok(None);
        };
        let confirmed = self.seal_totp(account.row.id, TotpColumn::Confirmed, &secret)?;
        let change = UserChange {
            totp_secret: Some(Some(&confirmed)),
            totp_pending_secret: Some(None),
            totp_last_step: Some(Some(step)),
            ..also
        };
        self.update_account(account.row.id, &change).await.map(Some)
    }
}
