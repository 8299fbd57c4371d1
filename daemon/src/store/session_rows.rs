//! SQL for `sessions`: persisted so that sessions survive a restart.
//!
//! Invariant: only token hashes are stored, never tokens.

use sqlx::Row;

use super::{Store, StoreError};

/// A `sessions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Public id.
    pub id: String,
    /// HMAC of the token.
    pub token_hash: Vec<u8>,
    /// Owner.
    pub user_id: i64,
    /// uid of the peer that logged in.
    pub peer_uid: i64,
    /// Login time.
    pub created_at: i64,
    /// Last use.
    pub last_seen_at: i64,
    /// End of the elevation window.
    pub elevated_until: Option<i64>,
}

impl Store {
    /// Inserts or replaces a session row.
    pub async fn save_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO sessions (id, token_hash, user_id, peer_uid, created_at, last_seen_at, elevated_until) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.token_hash)
        .bind(row.user_id)
        .bind(row.peer_uid)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .bind(row.elevated_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes sessions by id.
    pub async fn delete_sessions(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("DELETE FROM sessions WHERE id = ?")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Every stored session.
    pub async fn all_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM sessions")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionRow {
                    id: row.try_get("id")?,
                    token_hash: row.try_get("token_hash")?,
                    user_id: row.try_get("user_id")?,
                    peer_uid: row.try_get("peer_uid")?,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    elevated_until: row.try_get("elevated_until")?,
                })
            })
            .collect()
    }
}
