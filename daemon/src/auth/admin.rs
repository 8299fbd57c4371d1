//! Account administration by super-admins: users, roles, states, TOTP
//! resets, lockouts and other people's sessions.
//!
//! Invariant: there is always at least one active super-admin once bootstrap
//! is done; every change to what a user may do (role, state, deletion, TOTP
//! reset, revocation) raises the account's generation and ends all of that
//! user's sessions, so no session, and no login under way, outlives the
//! account it was granted on. (Changes to one's own credentials:
//! `own_credentials.rs`.)

use std::sync::Arc;

use super::{
    account::{Account, UserProfile, UserState},
    error::AuthError,
    input,
    lockout::AttemptKey,
    profiles::UsersPage,
    role::Role,
    sessions::Session,
    shared::AuthCore,
    token::SecretToken,
};
use crate::{
    audit::{AccountAction, Actor},
    clock::UnixMillis,
    store::UserChange,
    transport::PeerCredentials,
};

/// Accounts per page when the caller names no size.
pub const DEFAULT_USERS_PAGE: u32 = 500;
/// The most accounts in one page.
pub const MAX_USERS_PAGE: u32 = 1_000;

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

/// Account administration by super-admins and people's changes to their
/// own credentials.
#[derive(Debug)]
pub struct AccountAdmin {
    core: Arc<AuthCore>,
}

impl AccountAdmin {
    pub(super) fn new(core: Arc<AuthCore>) -> Self {
        Self { core }
    }

    /// One page of accounts by name: up to `page_size` (0: [`DEFAULT_USERS_PAGE`];
    /// capped at [`MAX_USERS_PAGE`]) after `page_token` (a previous page's
    /// `next_page_token`; empty for the first page). One query per page.
    pub async fn list_users(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<UsersPage, AuthError> {
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                input::username(page_token).map_err(|_| AuthError::InvalidInput {
                    field: "page_token",
                    reason: "not one this daemon gave out; start again with an empty one".into(),
                })?,
            )
        };
        let limit = match page_size {
            0 => DEFAULT_USERS_PAGE,
            size => size.min(MAX_USERS_PAGE),
        };
        // Read the version first: a write that ends after it changes it.
        let version = self.core.store.accounts_version();
        let mut page = match self.core.profiles.page(version, after, limit) {
            Some(page) => page,
            None => {
                let rows = self.core.store.users_page(after, limit).await?;
                let full = rows.len() == limit as usize;
                let users = rows
                    .into_iter()
                    .map(UserProfile::listed)
                    .collect::<Result<Vec<_>, _>>()?;
                let next_page_token = match users.last() {
                    Some(last) if full => last.username.clone(),
                    _ => String::new(),
                };
                let page = UsersPage {
                    users,
                    next_page_token,
                };
                self.core.profiles.put_page(version, after, limit, &page);
                page
            }
        };
        for profile in &mut page.users {
            profile.locked_until = self.core.locked_until(&profile.username);
        }
        Ok(page)
    }

    /// Creates an enrolling user; returns the one-time enrolment token.
    pub async fn create_user(
        &self,
        by: ActingUser<'_>,
        username: &str,
        role: Role,
    ) -> Result<(UserProfile, SecretToken, UnixMillis), AuthError> {
        let username = input::username(username)?;
        let (token, expires) = self.core.create_enrolling(username, role, None).await?;
        let profile = self
            .core
            .profile(&self.core.account(username).await?)
            .await?;
        self.core
            .record(
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
            && self.core.store.count_active_super_admins().await? <= 1
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
        let generation = self.core.update_account(account.row.id, &change).await?;
        self.core
            .supersede(account, Some(generation), None, |_| true)
            .await
    }

    /// Changes a user's role; their sessions end.
    pub async fn set_role(
        &self,
        by: ActingUser<'_>,
        username: &str,
        role: Role,
    ) -> Result<UserProfile, AuthError> {
        let account = self.core.account(input::username(username)?).await?;
        if role != Role::SuperAdmin {
            self.ensure_not_last_super_admin(&account).await?;
        }
        let change = UserChange {
            role: Some(role.as_str()),
            ..UserChange::default()
        };
        self.change_and_end_sessions(&account, change).await?;
        let detail = format!("{} -> {role}", account.role);
        self.core
            .record(
                by.actor(),
                AccountAction::RoleChanged,
                Some(username),
                Some(detail),
            )
            .await;
        self.core.profile(&self.core.account(username).await?).await
    }

    /// Disables or re-enables a user; disabling ends their sessions.
    pub async fn set_enabled(
        &self,
        by: ActingUser<'_>,
        username: &str,
        enabled: bool,
    ) -> Result<UserProfile, AuthError> {
        let account = self.core.account(input::username(username)?).await?;
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
        self.core
            .record(by.actor(), action, Some(username), None)
            .await;
        self.core.profile(&self.core.account(username).await?).await
    }

    /// Deletes a user and their sessions.
    pub async fn delete_user(&self, by: ActingUser<'_>, username: &str) -> Result<(), AuthError> {
        let account = self.core.account(input::username(username)?).await?;
        self.ensure_not_last_super_admin(&account).await?;
        self.core.store.delete_user(account.row.id).await?;
        self.core.supersede(&account, None, None, |_| true).await?;
        // A new account of the same name starts with no failures.
        self.core
            .forget_failures(&AttemptKey::Account(account.row.username.clone()))
            .await;
        self.core
            .forget_biometric_failures(&account.row.username)
            .await;
        self.core
            .record(by.actor(), AccountAction::UserDeleted, Some(username), None)
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
        let account = self.core.account(input::username(username)?).await?;
        if account.row.id == by.session.user_id {
            return Err(AuthError::WrongState(
                "reset your own TOTP with StartTotpReenrollment instead".to_owned(),
            ));
        }
        self.ensure_not_last_super_admin(&account).await?;
        let (token, hash, expires) = self.core.new_enrollment_token()?;
        let change = UserChange {
            state: Some(UserState::Enrolling.as_str()),
            totp_secret: Some(None),
            totp_pending_secret: Some(None),
            totp_last_step: Some(None),
            enrollment: Some(Some((&hash, expires.0))),
            ..UserChange::default()
        };
        self.core
            .store
            .replace_recovery_codes(account.row.id, &[])
            .await?;
        self.change_and_end_sessions(&account, change).await?;
        self.core
            .record(by.actor(), AccountAction::TotpReset, Some(username), None)
            .await;
        Ok((
            self.core
                .profile(&self.core.account(username).await?)
                .await?,
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
        let account = self.core.account(input::username(username)?).await?;
        let key = AttemptKey::Account(account.row.username.clone());
        let was_locked = self.core.failures.unlock(&key, self.core.now());
        self.core.forget_failures(&key).await;
        let detail = if was_locked {
            "lock lifted"
        } else {
            "was not locked"
        };
        self.core
            .record(
                by.actor(),
                AccountAction::AccountUnlocked,
                Some(username),
                Some(detail.to_owned()),
            )
            .await;
        self.core.profile(&account).await
    }

    /// Ends one session (any user's).
    pub async fn revoke_session(
        &self,
        by: ActingUser<'_>,
        session_id: &str,
    ) -> Result<u32, AuthError> {
        input::bounded("session_id", session_id, 64)?;
        if self.core.sessions.find(session_id).is_none() {
            return Err(AuthError::NoSuchSession(session_id.to_owned()));
        }
        let ended = self
            .core
            .end_session(session_id)
            .await?
            .ok_or_else(|| AuthError::NoSuchSession(session_id.to_owned()))?;
        let detail = format!("session {session_id}");
        self.core
            .record(
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
        let account = self.core.account(input::username(username)?).await?;
        let revoked = self
            .change_and_end_sessions(&account, UserChange::default())
            .await?;
        self.core
            .record(
                by.actor(),
                AccountAction::SessionsRevoked,
                Some(username),
                Some(format!("{revoked} sessions")),
            )
            .await;
        Ok(revoked)
    }
}
