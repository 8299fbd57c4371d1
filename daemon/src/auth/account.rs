//! Plain account data: a user row with its fields parsed, the profile
//! frontends see, and where an account's TOTP secrets are sealed.
//!
//! Invariant: imports no flow and no engine; a row whose role or state is not
//! one occcd knows is an error, never a default; TOTP secrets are sealed to
//! (users, column, user id), so a sealed secret moved to another row or
//! column does not open.

use std::str::FromStr;

use zeroize::Zeroizing;

use super::{error::AuthError, role::Role, totp::TotpSecret};
use crate::{
    clock::UnixMillis,
    crypto::{SealContext, Sealer},
    store::{UserListingRow, UserRow},
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
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
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

impl UserProfile {
    /// The profile of a listed account (lock state left for the caller).
    pub(crate) fn listed(listing: UserListingRow) -> Result<Self, AuthError> {
        let account = Account::from_row(listing.user)?;
        Ok(Self {
            id: account.row.id,
            username: account.row.username,
            role: account.role,
            state: account.state,
            created_at: UnixMillis(account.row.created_at),
            recovery_codes_left: u32::try_from(listing.recovery_codes_left).unwrap_or(u32::MAX),
            locked_until: None,
            os_account: listing.os_account,
        })
    }
}

/// A user row with its fields parsed.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) row: UserRow,
    pub(crate) role: Role,
    pub(crate) state: UserState,
}

impl Account {
    pub(crate) fn from_row(row: UserRow) -> Result<Self, AuthError> {
        let role = Role::from_str(&row.role)
            .map_err(|err| AuthError::internal("unknown role in database", &err))?;
        let state = UserState::parse(&row.state)?;
        Ok(Self { row, role, state })
    }
}

/// Which sealed TOTP column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TotpColumn {
    Confirmed,
    Pending,
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

/// `secret` sealed for `column` of user `user_id`.
pub(crate) fn seal_totp(
    sealer: &Sealer,
    user_id: i64,
    column: TotpColumn,
    secret: &TotpSecret,
) -> Result<Vec<u8>, AuthError> {
    let row = user_id.to_string();
    sealer
        .seal(&totp_context(column, &row), secret.expose())
        .map_err(|err| AuthError::internal("cannot seal TOTP secret", &err))
}

/// The secret sealed in `column` of user `user_id`.
pub(crate) fn open_totp(
    sealer: &Sealer,
    user_id: i64,
    column: TotpColumn,
    sealed: &[u8],
) -> Result<TotpSecret, AuthError> {
    let row = user_id.to_string();
    let bytes: Zeroizing<Vec<u8>> = sealer
        .open(&totp_context(column, &row), sealed)
        .map_err(|err| AuthError::internal("cannot open sealed TOTP secret", &err))?;
    Ok(TotpSecret::from_bytes(bytes))
}
