//! SQL for container integrity: baselines, quarantines, snapshots and the
//! engine event cursor (findings are in `finding_rows`).
//!
//! Invariant: a snapshot and all its artifacts are written in one
//! transaction (never half a snapshot); at most one unreleased quarantine
//! exists per container.

use sqlx::Row;

use super::{Store, StoreError};

/// A pinned baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRow {
    /// Configured container name.
    pub container: String,
    /// Image id (`sha256:…`).
    pub image_id: String,
    /// JSON array of repo digests.
    pub repo_digests: String,
    /// JSON object of security-relevant settings.
    pub settings: String,
    /// JSON array of pinned image files.
    pub image_files: String,
    /// JSON array of pinned host files.
    pub host_files: String,
    /// When.
    pub pinned_at: i64,
    /// Who.
    pub pinned_by: String,
    /// JSON of the executables the container may run.
    pub trusted_executables: String,
}

/// A quarantine in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    /// Container.
    pub container: String,
    /// Since.
    pub since: i64,
    /// Why.
    pub reason: String,
    /// Snapshot taken.
    pub snapshot_id: String,
}

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
    /// Manifest JSON.
    pub manifest: String,
    /// HMAC-SHA256 of the manifest.
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
    /// Stores (or replaces) the baseline of a container.
    pub async fn save_baseline(&self, baseline: &BaselineRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO integrity_baselines \
             (container, image_id, repo_digests, settings, image_files, host_files, pinned_at, pinned_by, \
             trusted_executables) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&baseline.container)
        .bind(&baseline.image_id)
        .bind(&baseline.repo_digests)
        .bind(&baseline.settings)
        .bind(&baseline.image_files)
        .bind(&baseline.host_files)
        .bind(baseline.pinned_at)
        .bind(&baseline.pinned_by)
        .bind(&baseline.trusted_executables)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The baseline of a container.
    pub async fn baseline(&self, container: &str) -> Result<Option<BaselineRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM integrity_baselines WHERE container = ?")
            .bind(container)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(BaselineRow {
            container: row.try_get("container")?,
            image_id: row.try_get("image_id")?,
            repo_digests: row.try_get("repo_digests")?,
            settings: row.try_get("settings")?,
            image_files: row.try_get("image_files")?,
            host_files: row.try_get("host_files")?,
            pinned_at: row.try_get("pinned_at")?,
            pinned_by: row.try_get("pinned_by")?,
            trusted_executables: row.try_get("trusted_executables")?,
        }))
    }

    /// Starts a quarantine.
    pub async fn start_quarantine(&self, quarantine: &QuarantineRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO integrity_quarantines (container, since, reason, snapshot_id) VALUES (?, ?, ?, ?)",
        )
        .bind(&quarantine.container)
        .bind(quarantine.since)
        .bind(&quarantine.reason)
        .bind(&quarantine.snapshot_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Quarantines not yet released.
    pub async fn active_quarantines(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT container, since, reason, snapshot_id FROM integrity_quarantines \
             WHERE released_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let decode = |row: &sqlx::sqlite::SqliteRow| -> Result<QuarantineRow, sqlx::Error> {
            Ok(QuarantineRow {
                container: row.try_get("container")?,
                since: row.try_get("since")?,
                reason: row.try_get("reason")?,
                snapshot_id: row.try_get("snapshot_id")?,
            })
        };
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Releases the quarantine of `container`; false when none was in force.
    pub async fn release_quarantine(
        &self,
        container: &str,
        released_by: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE integrity_quarantines SET released_at = ?, released_by = ?, release_note = ? \
             WHERE container = ? AND released_at IS NULL",
        )
        .bind(now)
        .bind(released_by)
        .bind(note)
        .bind(container)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Stores a snapshot and its sealed artifacts, all or nothing.
    pub async fn save_snapshot(
        &self,
        snapshot: &SnapshotRow,
        sealed_artifacts: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO snapshots (id, container, reason, created_at, manifest, manifest_hmac) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&snapshot.id)
        .bind(&snapshot.container)
        .bind(&snapshot.reason)
        .bind(snapshot.created_at)
        .bind(&snapshot.manifest)
        .bind(&snapshot.manifest_hmac)
        .execute(&mut *tx)
        .await?;
        for (name, sealed) in sealed_artifacts {
            sqlx::query(
                "INSERT INTO snapshot_artifacts (snapshot_id, name, sealed) VALUES (?, ?, ?)",
            )
            .bind(&snapshot.id)
            .bind(name)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every snapshot, newest first.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM snapshots ORDER BY created_at DESC, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(decode_snapshot).collect::<Result<_, _>>()?)
    }

    /// One snapshot.
    pub async fn snapshot(&self, id: &str) -> Result<Option<SnapshotRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode_snapshot).transpose()?)
    }

    /// The sealed artifacts of a snapshot, by name.
    pub async fn snapshot_artifacts(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, sealed FROM snapshot_artifacts WHERE snapshot_id = ? ORDER BY name",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let decode = |row: &sqlx::sqlite::SqliteRow| -> Result<(String, Vec<u8>), sqlx::Error> {
            Ok((row.try_get("name")?, row.try_get("sealed")?))
        };
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// The last engine event processed (nanoseconds since the epoch).
    pub async fn event_cursor(&self) -> Result<Option<i64>, StoreError> {
        let cursor = sqlx::query_scalar("SELECT event_nanos FROM integrity_cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(cursor)
    }

    /// Moves the event cursor forward (never back).
    pub async fn advance_event_cursor(&self, nanos: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO integrity_cursor (id, event_nanos) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET event_nanos = MAX(event_nanos, excluded.event_nanos)",
        )
        .bind(nanos)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
