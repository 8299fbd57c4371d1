//! Account administration (super-admin) and self-service changes.
//!
//! Invariant: there is always at least one active super-admin once bootstrap
//! is done; every change to what a user may do (role, state, deletion, TOTP
//! reset, revocation) raises the account's generation and ends all of that
//! user's sessions; every change to how a user proves themselves (password,
//! TOTP, recovery codes, device keys) raises it and ends all their other
//! sessions and any elevation obtained with the changed factor — so no
//! session, and no login under way, outlives the account it was granted on.

use zeroize::Zeroizing;

use super::{
    account::{Account, UserProfile, UserState},
    elevation::ElevationMethod,
    engine::AuthEngine,
    error::AuthError,
    input,
    lockout::AttemptKey,
    password::{Verification, check_new_password, normalize},
    role::Role,
    sessions::Session,
    token::SecretToken,
    totp::TotpEnrolment,
};
use crate::{
    audit::{AccountAction, Actor},
    clock::UnixMillis,
    store::UserChange,
    transport::PeerCredentials,
};

/// Who is acting: their session and socket peer.
#[derive(Debug, Clone, Copy)]
pub struct ActingUser<'a> {
    /// The caller's session.
    pub session: &'a Session,
    /// The caller's socket peer.
    pub peer: PeerCredentials,
}

impl ActingUser<'_> {
    pub(super) fn actor(&self) -> Actor {
        Actor::user(Some(self.peer), &self.session.username)
    }
}

impl AuthEngine {
    /// Every account.
    pub async fn list_users(&self) -> Result<Vec<UserProfile>, AuthError> {
        // Read the version first: a write that ends after it changes it.
        let version = self.store.accounts_version();
        let mut profiles = match self.profiles.all(version) {
            Some(profiles) => profiles,
            None => {
                let mut profiles = Vec::new();
                for row in self.store.all_users().await? {
                    profiles.push(self.profile(&Account::from_row(row)?).await?);
                }
                self.profiles.put_all(version, &profiles);
                profiles
            }
        };
        for profile in &mut profiles {
            profile.locked_until = self.locked_until(&profile.username);
        }
        Ok(profiles)
    }

    /// Creates an enrolling user; returns the one-time enrolment token.
    pub async fn create_user(
        &self,
        by: ActingUser<'_>,
        username: &str,
        role: Role,
    ) -> Result<(UserProfile, SecretToken, UnixMillis), AuthError> {
        let username = input::username(username)?;
        let (token, expires) = self.create_enrolling(username, role, None).await?;
        let profile = self.profile(&self.account(username).await?).await?;
        self.record(
            by.actor(),
            AccountAction::UserCreated,
            Some(username),
            Some(format!("role={role}")),
        )
        .await;
        Ok((profile, token, expires))
    }

    async fn ensure_not_last_super_admin(&self, account: &Account) -> Result<(), AuthError> {
        if account.role == Role::SuperAdmin
            && account.state == UserState::Active
            && self.store.count_active_super_admins().await? <= 1
        {
            return Err(AuthError::LastSuperAdmin(account.row.username.clone()));
        }
        Ok(())
    }

    /// Applies `change` to `account`, raising its generation, and ends all
    /// of its sessions (and the logins under way).
    async fn change_and_end_sessions(
        &self,
        account: &Account,
        change: UserChange<'_>,
    ) -> Result<u32, AuthError> {
        let change = UserChange {
            bump_generation: true,
            ..change
        };
        let generation = self.update_account(account.row.id, &change).await?;
        self.supersede(account, Some(generation), None, |_| true)
            .await
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
            .supersede(account, Some(generation), Some(by.session), clears)
            .await?;
        self.record(
            by.actor(),
            AccountAction::SessionsRevoked,
            Some(&by.session.username),
            Some(format!("{ended} other sessions ended: {what} changed")),
        )
        .await;
        Ok(())
    }

    /// Changes a user's role; their sessions end.
    pub async fn set_role(
        &self,
        by: ActingUser<'_>,
        username: &str,
        role: Role,
    ) -> Result<UserProfile, AuthError> {
        let account = self.account(input::username(username)?).await?;
        if role != Role::SuperAdmin {
            self.ensure_not_last_super_admin(&account).await?;
        }
        let change = UserChange {
            role: Some(role.as_str()),
            ..UserChange::default()
        };
        self.change_and_end_sessions(&account, change).await?;
        let detail = format!("{} -> {role}", account.role);
        self.record(
            by.actor(),
            AccountAction::RoleChanged,
            Some(username),
            Some(detail),
        )
        .await;
        self.profile(&self.account(username).await?).await
    }

    /// Disables or re-enables a user; disabling ends their sessions.
    pub async fn set_enabled(
        &self,
        by: ActingUser<'_>,
        username: &str,
        enabled: bool,
    ) -> Result<UserProfile, AuthError> {
        let account = self.account(input::username(username)?).await?;
        let (from, to, action) = if enabled {
            (
                UserState::Disabled,
                UserState::Active,
                AccountAction::UserEnabled,
            )
        } else {
            (
                UserState::Active,
                UserState::Disabled,
                AccountAction::UserDisabled,
            )
        };
        if account.state != from {
            return Err(AuthError::WrongState(format!(
                "{username} is not {}",
                from.as_str()
            )));
        }
        if !enabled {
            self.ensure_not_last_super_admin(&account).await?;
        }
        let change = UserChange {
            state: Some(to.as_str()),
            ..UserChange::default()
        };
        self.change_and_end_sessions(&account, change).await?;
        self.record(by.actor(), action, Some(username), None).await;
        self.profile(&self.account(username).await?).await
    }

    /// Deletes a user and their sessions.
    pub async fn delete_user(&self, by: ActingUser<'_>, username: &str) -> Result<(), AuthError> {
        let account = self.account(input::username(username)?).await?;
        self.ensure_not_last_super_admin(&account).await?;
        self.store.delete_user(account.row.id).await?;
        self.supersede(&account, None, None, |_| true).await?;
        // A new account of the same name starts with no failures.
        self.forget_failures(&AttemptKey::Account(account.row.username.clone()))
            .await;
        self.forget_biometric_failures(&account.row.username).await;
        self.record(by.actor(), AccountAction::UserDeleted, Some(username), None)
            .await;
        Ok(())
    }

    /// Clears a user's TOTP and recovery codes and puts them back into
    /// enrolment with a new token; their sessions end.
    pub async fn reset_totp(
        &self,
        by: ActingUser<'_>,
        username: &str,
    ) -> Result<(UserProfile, SecretToken, UnixMillis), AuthError> {
        let account = self.account(input::username(username)?).await?;
        if account.row.id == by.session.user_id {
            return Err(AuthError::WrongState(
                "reset your own TOTP with StartTotpReenrollment instead".to_owned(),
            ));
        }
        self.ensure_not_last_super_admin(&account).await?;
        let (token, hash, expires) = self.new_enrollment_token()?;
        let change = UserChange {
            state: Some(UserState::Enrolling.as_str()),
            totp_secret: Some(None),
            totp_pending_secret: Some(None),
            totp_last_step: Some(None),
            enrollment: Some(Some((&hash, expires.0))),
            ..UserChange::default()
        };
        self.store
            .replace_recovery_codes(account.row.id, &[])
            .await?;
        self.change_and_end_sessions(&account, change).await?;
        self.record(by.actor(), AccountAction::TotpReset, Some(username), None)
            .await;
        Ok((
            self.profile(&self.account(username).await?).await?,
            token,
            expires,
        ))
    }

    /// Lifts a lock on an account.
    pub async fn unlock(
        &self,
        by: ActingUser<'_>,
        username: &str,
    ) -> Result<UserProfile, AuthError> {
        let account = self.account(input::username(username)?).await?;
        let key = AttemptKey::Account(account.row.username.clone());
        let was_locked = self.failures.unlock(&key, self.now());
        self.forget_failures(&key).await;
        let detail = if was_locked {
            "lock lifted"
        } else {
            "was not locked"
        };
        self.record(
            by.actor(),
            AccountAction::AccountUnlocked,
            Some(username),
            Some(detail.to_owned()),
        )
        .await;
        self.profile(&account).await
    }

    /// Ends one session (any user's).
    pub async fn revoke_session(
        &self,
        by: ActingUser<'_>,
        session_id: &str,
    ) -> Result<u32, AuthError> {
        input::bounded("session_id", session_id, 64)?;
        if self.sessions.find(session_id).is_none() {
            return Err(AuthError::NoSuchSession(session_id.to_owned()));
        }
        let ended = self
            .end_session(session_id)
            .await?
            .ok_or_else(|| AuthError::NoSuchSession(session_id.to_owned()))?;
        let detail = format!("session {session_id}");
        self.record(
            by.actor(),
            AccountAction::SessionsRevoked,
            Some(&ended.username),
            Some(detail),
        )
        .await;
        Ok(1)
    }

    /// Ends every session of a user.
    pub async fn revoke_sessions_of(
        &self,
        by: ActingUser<'_>,
        username: &str,
    ) -> Result<u32, AuthError> {
        let account = self.account(input::username(username)?).await?;
        let revoked = self
            .change_and_end_sessions(&account, UserChange::default())
            .await?;
        self.record(
            by.actor(),
            AccountAction::SessionsRevoked,
            Some(username),
            Some(format!("{revoked} sessions")),
        )
        .await;
        Ok(revoked)
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
        let new =
            check_new_password(&by.session.username, new).map_err(AuthError::PasswordPolicy)?;
        let key = AttemptKey::Account(by.session.username.clone());
        let attempt = self.throttle(&key, Some(by.peer)).await?;
        let account = self.account(&by.session.username).await?;
        let verification = self
            .hashing
            .verify(account.row.password_phc.clone(), normalize(current))
            .await
            .map_err(|err| AuthError::internal("password verification failed", &err))?;
        if verification == Verification::Mismatch {
            self.fail(
                attempt,
                Some(by.peer),
                AccountAction::LoginFailed,
                &key,
                "current password",
            )
            .await;
            return Err(AuthError::BadCredentials);
        }
        self.succeed(attempt).await;
        let generation = self.store_password(account.row.id, new, true).await?;
        self.record(
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
        let account = self.account(&by.session.username).await?;
        self.start_totp(&account).await
    }

    /// Confirms the new TOTP secret with a code from it.
    pub async fn confirm_totp_reenrollment(
        &self,
        by: ActingUser<'_>,
        code: &str,
    ) -> Result<(), AuthError> {
        input::totp_code(code)?;
        let key = AttemptKey::Account(by.session.username.clone());
        let attempt = self.throttle(&key, Some(by.peer)).await?;
        let account = self.account(&by.session.username).await?;
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
            .promote_pending_totp(&account, sealed, code, replaces)
            .await?
        else {
            self.fail(
                attempt,
                Some(by.peer),
                AccountAction::ElevationFailed,
                &key,
                "new totp code",
            )
            .await;
            return Err(AuthError::BadCredentials);
        };
        self.succeed(attempt).await;
        self.record(
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
        let account = self.account(&by.session.username).await?;
        let codes = self
            .recovery
            .issue()
            .map_err(|err| AuthError::internal("random generator failed", &err))?;
        self.store
            .replace_recovery_codes(account.row.id, &codes.hashes)
            .await?;
        let replaces = UserChange {
            bump_generation: true,
            ..UserChange::default()
        };
        let generation = self.update_account(account.row.id, &replaces).await?;
        self.record(
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
