//! Everything that can go wrong in authentication, as data a caller can act on.
//!
//! Invariant: no variant carries a secret; wrong password, wrong code and
//! unknown user are one variant, so callers cannot tell them apart.

use std::time::Duration;

use super::{password::PasswordRejected, sessions::SessionRejected};

/// Authentication and account errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A field is empty, too long or malformed.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Unknown user, wrong password or wrong code (deliberately not told apart).
    #[error("username, password or code is wrong")]
    BadCredentials,
    /// Too soon after failed attempts.
    #[error("too many failed attempts; retry in {} s", .retry_after.as_secs().max(1))]
    Throttled {
        /// Wait this long.
        retry_after: Duration,
    },
    /// Locked after repeated failures.
    #[error(
        "temporarily locked after repeated failed attempts; retry in {} s or ask a super-admin to unlock it",
        .retry_after.as_secs().max(1)
    )]
    Locked {
        /// Wait this long.
        retry_after: Duration,
    },
    /// Another attempt for the same account or OS user is being checked.
    #[error(
        "another login attempt for this account or OS user is being checked; retry in a moment"
    )]
    AttemptInProgress,
    /// The caller's OS user (or four of all users) has a new password
    /// being checked already.
    #[error(
        "another new password of your OS user is being checked (or four of all users' are); retry in a moment"
    )]
    PasswordCheckBusy,
    /// The session token was not accepted.
    #[error("{}", session_message(*.0))]
    Session(SessionRejected),
    /// The account changed (role, state, credentials) or every session was
    /// revoked while this login was being checked.
    #[error(
        "the account changed while this login was being checked (role, state or credentials, or every session was revoked); log in again"
    )]
    AccountChanged,
    /// A new password does not meet the policy.
    #[error("{0}")]
    PasswordPolicy(PasswordRejected),
    /// A bootstrap or enrolment token is wrong, used or expired.
    #[error("the {0} token is invalid, used or expired")]
    BadToken(&'static str),
    /// Bootstrap after the first user exists.
    #[error("bootstrap is only possible before any user exists; log in instead")]
    BootstrapClosed,
    /// No such user.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// No such session.
    #[error("no session with id {0:?}")]
    NoSuchSession(String),
    /// The username is taken.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// The change would leave no active super-admin.
    #[error("{0} is the last active super-admin; promote another user first")]
    LastSuperAdmin(String),
    /// The account is not in a state that allows this.
    #[error("{0}")]
    WrongState(String),
    /// The caller's role or elevation does not allow this on that object.
    #[error("{0}")]
    NotAllowed(String),
    /// PAM biometric login cannot be used (not configured, user not linked).
    #[error("{0}")]
    BiometricUnavailable(&'static str),
    /// The PAM stack did not recognise the person.
    #[error("not recognised ({0}); try again or log in with password + TOTP")]
    BiometricRejected(String),
    /// The PAM account check refused the linked OS account.
    #[error(
        "the linked OS account may not log in ({0}: disabled, expired or restricted); ask an administrator"
    )]
    OsAccountRefused(String),
    /// The PAM check did not finish in time.
    #[error(
        "the biometric check did not finish within {} s; try again or log in with password + TOTP",
        .0.as_secs().max(1)
    )]
    BiometricTimedOut(Duration),
    /// Every PAM transaction slot is taken.
    #[error("too many biometric checks are running; retry in a moment")]
    BiometricBusy,
    /// The store's disk is full: nothing was changed.
    #[error("{0}")]
    StoreFull(String),
    /// The store takes no changes now (see `StoreError::WritesRefused`).
    #[error("{0}")]
    StoreRefused(String),
    /// A fault inside the daemon (store, sealing, hashing); details are logged.
    #[error("internal error: {0}")]
    Internal(String),
}

fn session_message(rejected: SessionRejected) -> &'static str {
    match rejected {
        SessionRejected::Unknown => "the session is unknown or has ended; log in again",
        SessionRejected::IdleExpired => "the session ended after being idle too long; log in again",
        SessionRejected::LifetimeExpired => {
            "the session reached its maximum lifetime; log in again"
        }
        SessionRejected::WrongPeer => "this session belongs to another OS user; log in as yourself",
        SessionRejected::Superseded => {
            "the session ended: the account's role, state or credentials changed, or every session was revoked; log in again"
        }
    }
}

impl AuthError {
    /// An internal error; `context` is logged, the caller sees a generic message.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::Internal(context.to_owned())
    }
}

impl From<crate::store::StoreError> for AuthError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Full => {
                tracing::error!(error = %err, "a write failed");
                Self::StoreFull(err.to_string())
            }
            crate::store::StoreError::WritesRefused | crate::store::StoreError::Io(_) => {
                tracing::warn!(error = %err, "a write was refused");
                Self::StoreRefused(err.to_string())
            }
            other => Self::internal("database failure", &other),
        }
    }
}
