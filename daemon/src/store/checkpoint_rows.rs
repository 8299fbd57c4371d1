//! Rows of `audit_checkpoints`: signed public links of the audit chain.
//!
//! Invariant: rows are only inserted, never updated or deleted; inserting a
//! checkpoint that exists keeps the first (both are the same statement, as
//! links and Ed25519 signatures are deterministic).

use sqlx::Row;

use super::{Store, StoreError};

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// The entry it covers.
    pub sequence: i64,
    /// When it was signed.
    pub at_unix_ms: i64,
    /// The public link after that entry (32 bytes).
    pub link: Vec<u8>,
    /// Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

impl Store {
    /// Stores `row` unless a checkpoint of its entry exists.
    pub async fn add_audit_checkpoint(&self, row: &CheckpointRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO audit_checkpoints (sequence, at_unix_ms, link, signature) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(row.sequence)
        .bind(row.at_unix_ms)
        .bind(&row.link)
        .bind(&row.signature)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest checkpoint covering an entry at or before `sequence`.
    pub async fn audit_checkpoint_at_or_before(
        &self,
        sequence: i64,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM audit_checkpoints WHERE sequence <= ? ORDER BY sequence DESC LIMIT 1",
        )
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| decode(&row)).transpose()
    }

    /// Up to `limit` checkpoints after entry `after`, oldest first.
    pub async fn audit_checkpoints_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_checkpoints WHERE sequence > ? ORDER BY sequence LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        sequence: row.try_get("sequence")?,
        at_unix_ms: row.try_get("at_unix_ms")?,
        link: row.try_get("link")?,
        signature: row.try_get("signature")?,
    })
}
