//! SQL for `device_keys`.
//!
//! Invariant: a revoked key is never returned as usable; revocation is a
//! timestamp, so the audit trail can still name the key.

use sqlx::Row;

use super::{Store, StoreError};

/// A `device_keys` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeyRow {
    /// Public id.
    pub id: String,
    /// Owner.
    pub user_id: i64,
    /// Display name.
    pub name: String,
    /// Platform label.
    pub platform: String,
    /// SEC1 uncompressed P-256 point.
    pub public_key: Vec<u8>,
    /// Registration time.
    pub created_at: i64,
    /// Last successful use.
    pub last_used_at: Option<i64>,
    /// uid of the socket peer that registered it (unknown for keys
    /// registered before occcd recorded it).
    pub registered_uid: Option<u32>,
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceKeyRow, sqlx::Error> {
    Ok(DeviceKeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        platform: row.try_get("platform")?,
        public_key: row.try_get("public_key")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        registered_uid: row
            .try_get::<Option<i64>, _>("registered_uid")?
            .and_then(|uid| u32::try_from(uid).ok()),
    })
}

impl Store {
    /// Stores a new key.
    pub async fn insert_device_key(&self, key: &DeviceKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_keys (id, user_id, name, platform, public_key, created_at, registered_uid) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(key.user_id)
        .bind(&key.name)
        .bind(&key.platform)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(key.registered_uid.map(i64::from))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's keys that are not revoked, oldest first.
    pub async fn active_device_keys(&self, user_id: i64) -> Result<Vec<DeviceKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM device_keys WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// An unrevoked key by id.
    pub async fn active_device_key(&self, id: &str) -> Result<Option<DeviceKeyRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM device_keys WHERE id = ? AND revoked_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    /// Marks a key used.
    pub async fn touch_device_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE device_keys SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes a key; false when it was unknown or already revoked.
    pub async fn revoke_device_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE device_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
