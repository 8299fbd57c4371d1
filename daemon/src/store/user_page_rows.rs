//! SQL for listing accounts a page at a time, with what a profile shows.
//!
//! Invariant: one page is one query — the account, its unused recovery codes
//! counted and its OS-account link joined — in username order, starting
//! strictly after the cursor, so pages never overlap and never skip a name
//! that existed while they were read.

use sqlx::Row;

use super::{Store, StoreError, UserRow, user_rows::decode_user};

/// One account as a profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListingRow {
    /// The account.
    pub user: UserRow,
    /// How many recovery codes are still unused.
    pub recovery_codes_left: i64,
    /// The linked OS account, if any.
    pub os_account: Option<String>,
}

impl Store {
    /// Up to `limit` accounts whose name sorts after `after` (from the first
    /// when `None`), by name.
    pub async fn users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserListingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT users.*, \
               (SELECT count(*) FROM recovery_codes \
                 WHERE recovery_codes.user_id = users.id AND used_at IS NULL) AS codes_left, \
               os_account_links.os_account AS linked_os_account \
             FROM users LEFT JOIN os_account_links ON os_account_links.user_id = users.id \
             WHERE users.username > ? ORDER BY users.username LIMIT ?",
        )
        .bind(after.unwrap_or("")) // every name is non-empty
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UserListingRow {
                    user: decode_user(row)?,
                    recovery_codes_left: row.try_get("codes_left")?,
                    os_account: row.try_get("linked_os_account")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
