//! SQL for `os_account_links`: which OS account PAM checks for a user.
//!
//! Invariant: a user has at most one link; setting replaces it in one
//! statement, removing the user removes it (foreign key cascade).

use super::{Store, StoreError};

impl Store {
    /// The OS account linked to `user_id`, if any.
    pub async fn os_account(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        let account =
            sqlx::query_scalar("SELECT os_account FROM os_account_links WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(account)
    }

    /// Links `user_id` to `os_account`, replacing any earlier link.
    pub async fn link_os_account(
        &self,
        user_id: i64,
        os_account: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _changing = self.accounts_change();
        sqlx::query(
            "INSERT INTO os_account_links (user_id, os_account, linked_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET os_account = excluded.os_account, linked_at = excluded.linked_at",
        )
        .bind(user_id)
        .bind(os_account)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the link of `user_id`; false when there was none.
    pub async fn unlink_os_account(&self, user_id: i64) -> Result<bool, StoreError> {
        let _changing = self.accounts_change();
        let result = sqlx::query("DELETE FROM os_account_links WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
