//! SQL for forensic snapshots: a row per snapshot, written first as
//! "writing", then its artifacts as sealed chunks as they arrive, then the
//! manifest that makes it "complete".
//!
//! Invariant: only complete snapshots are listed or read; a chunk is
//! written once (primary key), so nothing stored is ever overwritten;
//! deleting a snapshot deletes its chunks.

use sqlx::Row;

use super::{Store, StoreError};

/// A stored snapshot (without artifacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Id.
    pub id: String,
    /// Container.
    pub container: String,
    /// Why it was taken.
    pub reason: String,
    /// When.
    pub created_at: i64,
    /// Manifest JSON (empty while writing).
    pub manifest: String,
    /// HMAC-SHA256 of the manifest (empty while writing).
    pub manifest_hmac: Vec<u8>,
}

fn decode_snapshot(row: &sqlx::sqlite::SqliteRow) -> Result<SnapshotRow, sqlx::Error> {
    Ok(SnapshotRow {
        id: row.try_get("id")?,
        container: row.try_get("container")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        manifest: row.try_get("manifest")?,
        manifest_hmac: row.try_get("manifest_hmac")?,
    })
}

impl Store {
    /// Starts snapshot `snapshot` (state "writing"; its manifest comes last).
    pub async fn begin_snapshot(&self, snapshot: &SnapshotRow) -> Result<(), StoreError> {
        let _changing = self.snapshots_change();
        sqlx::query(
            "INSERT INTO snapshots (id, container, reason, created_at, manifest, manifest_hmac, state) \
             VALUES (?, ?, ?, ?, '', x'', 'writing')",
        )
        .bind(&snapshot.id)
        .bind(&snapshot.container)
        .bind(&snapshot.reason)
        .bind(snapshot.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores chunk `seq` of artifact `name` of snapshot `id`.
    pub async fn put_snapshot_chunk(
        &self,
        id: &str,
        name: &str,
        seq: i64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshot_chunks (snapshot_id, name, seq, sealed) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(seq)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Chunk `seq` of artifact `name` of snapshot `id`, if stored.
    pub async fn snapshot_chunk(
        &self,
        id: &str,
        name: &str,
        seq: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = sqlx::query_scalar(
            "SELECT sealed FROM snapshot_chunks WHERE snapshot_id = ? AND name = ? AND seq = ?",
        )
        .bind(id)
        .bind(name)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        Ok(sealed)
    }

    /// Names of the artifacts with chunks stored, in the order written.
    pub async fn snapshot_chunk_names(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "SELECT name FROM snapshot_chunks WHERE snapshot_id = ? AND seq = 0 ORDER BY rowid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// Makes snapshot `id` complete with its manifest.
    pub async fn complete_snapshot(
        &self,
        id: &str,
        manifest: &str,
        manifest_hmac: &[u8],
    ) -> Result<(), StoreError> {
        let _changing = self.snapshots_change();
        sqlx::query(
            "UPDATE snapshots SET manifest = ?, manifest_hmac = ?, state = 'complete' \
             WHERE id = ? AND state = 'writing'",
        )
        .bind(manifest)
        .bind(manifest_hmac)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Snapshots left "writing" (by a daemon that stopped mid-way).
    pub async fn writing_snapshots(&self) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM snapshots WHERE state = 'writing' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(decode_snapshot).collect::<Result<_, _>>()?)
    }

    /// Every complete snapshot, newest first.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM snapshots WHERE state = 'complete' ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decode_snapshot).collect::<Result<_, _>>()?)
    }

    /// One complete snapshot.
    pub async fn snapshot(&self, id: &str) -> Result<Option<SnapshotRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE id = ? AND state = 'complete'")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode_snapshot).transpose()?)
    }

    /// An artifact of a snapshot written whole, before chunks (schema 0005).
    pub async fn whole_snapshot_artifact(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = sqlx::query_scalar(
            "SELECT sealed FROM snapshot_artifacts WHERE snapshot_id = ? AND name = ?",
        )
        .bind(id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(sealed)
    }
}
