//! SQL for stored versions of OpenClaw's config, per container.
//!
//! Invariant: versions are only ever added (numbers only grow, the primary
//! key refuses a number twice) and pruned oldest first in the same
//! transaction, never the latest; the text stays sealed here — only the
//! domain opens it; listing reads no text.

use sqlx::Row;

use super::{Store, StoreError};

/// One stored config version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVersionRow {
    /// The watched container.
    pub container: String,
    /// 1, 2, … per container.
    pub number: i64,
    /// The text's version (hex HMAC-SHA-256 under a daemon key).
    pub version: String,
    /// The text, sealed (empty in listings).
    pub text_sealed: Vec<u8>,
    /// The text's length in bytes.
    pub size: i64,
    /// `imported`, `edited`, `restored` or `found`.
    pub origin: String,
    /// Who wrote it (an occcd user, or `occcd`/`outside occcd`).
    pub author: String,
    /// When it was stored.
    pub created_at: i64,
    /// Why.
    pub note: String,
    /// Lines added against the version before it.
    pub lines_added: i64,
    /// Lines removed against the version before it.
    pub lines_removed: i64,
    /// The policy changes against the version before it, as JSON.
    pub policy: String,
    /// The version a restore brought back.
    pub restored_from: Option<i64>,
}

/// The columns every read decodes (the text apart).
macro_rules! columns {
    () => {
        "container, number, version, size, origin, author, created_at, note, \
         lines_added, lines_removed, policy, restored_from"
    };
}

fn decode(row: &sqlx::sqlite::SqliteRow, with_text: bool) -> Result<ConfigVersionRow, sqlx::Error> {
    Ok(ConfigVersionRow {
        container: row.try_get("container")?,
        number: row.try_get("number")?,
        version: row.try_get("version")?,
        text_sealed: if with_text {
            row.try_get("text_sealed")?
        } else {
            Vec::new()
        },
        size: row.try_get("size")?,
        origin: row.try_get("origin")?,
        author: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
        note: row.try_get("note")?,
        lines_added: row.try_get("lines_added")?,
        lines_removed: row.try_get("lines_removed")?,
        policy: row.try_get("policy")?,
        restored_from: row.try_get("restored_from")?,
    })
}

impl Store {
    /// The newest stored version of `container`'s config, with its text.
    pub async fn latest_config_version(
        &self,
        container: &str,
    ) -> Result<Option<ConfigVersionRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", text_sealed FROM openclaw_config_versions \
             WHERE container = ? ORDER BY number DESC LIMIT 1"
        ))
        .bind(container)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| decode(&r, true)).transpose()?)
    }

    /// Version `number` of `container`'s config, with its text.
    pub async fn config_version(
        &self,
        container: &str,
        number: i64,
    ) -> Result<Option<ConfigVersionRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            ", text_sealed FROM openclaw_config_versions \
             WHERE container = ? AND number = ?"
        ))
        .bind(container)
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| decode(&r, true)).transpose()?)
    }

    /// Up to `limit` versions of `container` numbered below `below`, newest
    /// first, without their texts.
    pub async fn config_versions(
        &self,
        container: &str,
        below: i64,
        limit: u32,
    ) -> Result<Vec<ConfigVersionRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM openclaw_config_versions \
             WHERE container = ? AND number < ? ORDER BY number DESC LIMIT ?"
        ))
        .bind(container)
        .bind(below)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| decode(r, false))
            .collect::<Result<_, _>>()?)
    }

    /// Adds `rows` (numbered after the latest) and prunes every version of
    /// their container but the newest `keep`, in one transaction.
    pub async fn add_config_versions(
        &self,
        rows: &[ConfigVersionRow],
        keep: u32,
    ) -> Result<(), StoreError> {
        let _changing = self.configs_change();
        let mut tx = self.write_transaction().await?;
        for row in rows {
            sqlx::query(concat!(
                "INSERT INTO openclaw_config_versions (",
                columns!(),
                ", text_sealed) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&row.container)
            .bind(row.number)
            .bind(&row.version)
            .bind(row.size)
            .bind(&row.origin)
            .bind(&row.author)
            .bind(row.created_at)
            .bind(&row.note)
            .bind(row.lines_added)
            .bind(row.lines_removed)
            .bind(&row.policy)
            .bind(row.restored_from)
            .bind(&row.text_sealed)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(last) = rows.last() {
            sqlx::query("DELETE FROM openclaw_config_versions WHERE container = ? AND number <= ?")
                .bind(&last.container)
                .bind(last.number - i64::from(keep))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
