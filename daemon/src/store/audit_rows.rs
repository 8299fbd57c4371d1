//! SQL for the `audit_log` table.
//!
//! Invariant: rows are only ever inserted, in one transaction per batch, so a
//! batch is either wholly on disk or not at all.

use sqlx::Row;

use super::{Store, StoreError};

/// One stored audit entry, exactly as in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub sequence: i64,
    /// When it was recorded.
    pub at_unix_ms: i64,
    /// Event kind, e.g. `call_refused`.
    pub kind: String,
    /// Peer uid.
    pub actor_uid: Option<i64>,
    /// Peer gid.
    pub actor_gid: Option<i64>,
    /// Peer pid.
    pub actor_pid: Option<i64>,
    /// Authenticated occcd user.
    pub actor_user: Option<String>,
    /// JSON details.
    pub detail: String,
    /// Hash of the previous entry.
    pub prev_hash: Vec<u8>,
    /// This entry's hash.
    pub entry_hash: Vec<u8>,
}

impl Store {
    /// Appends `rows` in one transaction.
    pub async fn append_audit_rows(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO audit_log (sequence, at_unix_ms, kind, actor_uid, actor_gid, actor_pid, \
                 actor_user, detail, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(row.sequence)
            .bind(row.at_unix_ms)
            .bind(&row.kind)
            .bind(row.actor_uid)
            .bind(row.actor_gid)
            .bind(row.actor_pid)
            .bind(&row.actor_user)
            .bind(&row.detail)
            .bind(&row.prev_hash)
            .bind(&row.entry_hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest entry, if any.
    pub async fn last_audit_row(&self) -> Result<Option<AuditRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM audit_log ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| decode(&row)).transpose()
    }

    /// Up to `limit` entries with sequence greater than `after`, in order.
    pub async fn audit_rows_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM audit_log WHERE sequence > ? ORDER BY sequence LIMIT ?")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(decode).collect()
    }
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        sequence: row.try_get("sequence")?,
        at_unix_ms: row.try_get("at_unix_ms")?,
        kind: row.try_get("kind")?,
        actor_uid: row.try_get("actor_uid")?,
        actor_gid: row.try_get("actor_gid")?,
        actor_pid: row.try_get("actor_pid")?,
        actor_user: row.try_get("actor_user")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        entry_hash: row.try_get("entry_hash")?,
    })
}
