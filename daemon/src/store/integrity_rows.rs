//! SQL for container integrity: baselines, quarantines and the engine
//! event cursor (findings are in `finding_rows`, snapshots in
//! `snapshot_rows`).
//!
//! Invariant: at most one unreleased quarantine exists per container; the
//! event cursor only moves forward.

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
