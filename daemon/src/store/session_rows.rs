//! SQL for `sessions`: persisted so that sessions survive a restart, with
//! the clock anchor they were last judged against.
//!
//! Invariant: only token hashes are stored, never tokens; a row is created
//! once, at login, and later writes only update a row that still exists, so
//! a write racing a logout or revocation cannot bring a session back. There
//! is at most one anchor row; a write replaces it.

use sqlx::Row;

use super::{Store, StoreError};

/// A `sessions` row. `Debug` leaves out the token hash.
#[derive(Clone, PartialEq, Eq)]
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
    /// How the elevation was obtained.
    pub elevation_method: Option<String>,
    /// The owner's account generation the session was granted under.
    pub generation: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("peer_uid", &self.peer_uid)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a new session.
    pub async fn insert_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, peer_uid, created_at, last_seen_at, \
             elevated_until, elevation_method, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.token_hash)
        .bind(row.user_id)
        .bind(row.peer_uid)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .bind(row.elevated_until)
        .bind(&row.elevation_method)
        .bind(row.generation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes a session's login and last-use times (as the session store
    /// holds them: moved back when the wall clock went back), elevation and
    /// generation; a session no longer stored stays gone.
    pub async fn update_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        update_session_query(row).execute(&self.pool).await?;
        Ok(())
    }

    /// Writes `rows` as [`Store::update_session`] does and the clock anchor
    /// they were judged against, in one transaction: an anchor is never
    /// stored beside rows older or newer than it.
    pub async fn update_sessions_and_anchor(
        &self,
        rows: &[SessionRow],
        anchor: Option<&ClockAnchorRow>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for row in rows {
            update_session_query(row).execute(&mut *tx).await?;
        }
        if let Some(anchor) = anchor {
            sqlx::query(
                "INSERT OR REPLACE INTO session_clock_anchor (id, origin, wall_ms, running_ms) \
                 VALUES (1, ?, ?, ?)",
            )
            .bind(&anchor.origin)
            .bind(anchor.wall_ms)
            .bind(anchor.running_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes sessions by id, in one transaction.
    pub async fn delete_sessions(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_transaction().await?;
        for id in ids {
            sqlx::query("DELETE FROM sessions WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes, in one statement, the sessions whose last use is at or
    /// before `idle_cutoff` or whose login is at or before
    /// `lifetime_cutoff` (ended by their idle timeout or lifetime); returns
    /// how many.
    pub async fn delete_ended_sessions(
        &self,
        idle_cutoff: i64,
        lifetime_cutoff: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM sessions WHERE last_seen_at <= ? OR created_at <= ?")
            .bind(idle_cutoff)
            .bind(lifetime_cutoff)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// The stored sessions not ended by those cutoffs (see
    /// [`Store::delete_ended_sessions`]).
    pub async fn sessions_alive_at(
        &self,
        idle_cutoff: i64,
        lifetime_cutoff: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM sessions WHERE last_seen_at > ? AND created_at > ?")
            .bind(idle_cutoff)
            .bind(lifetime_cutoff)
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
                    elevation_method: row.try_get("elevation_method")?,
                    generation: row.try_get("generation")?,
                })
            })
            .collect()
    }

    /// The session book's clock anchor, if one was saved.
    pub async fn clock_anchor(&self) -> Result<Option<ClockAnchorRow>, StoreError> {
        let row = sqlx::query_as(
            "SELECT origin, wall_ms, running_ms FROM session_clock_anchor WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(origin, wall_ms, running_ms)| ClockAnchorRow {
            origin,
            wall_ms,
            running_ms,
        }))
    }
}

fn update_session_query(
    row: &SessionRow,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(
        "UPDATE sessions SET created_at = ?, last_seen_at = ?, elevated_until = ?, \
         elevation_method = ?, generation = ? WHERE id = ?",
    )
    .bind(row.created_at)
    .bind(row.last_seen_at)
    .bind(row.elevated_until)
    .bind(&row.elevation_method)
    .bind(row.generation)
    .bind(&row.id)
}

/// The `session_clock_anchor` row: a wall-clock time and the OS running
/// time then, counted from `origin` (the boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockAnchorRow {
    /// Where the running time counts from.
    pub origin: String,
    /// Wall-clock time, Unix milliseconds.
    pub wall_ms: i64,
    /// Running time then, milliseconds.
    pub running_ms: i64,
}
