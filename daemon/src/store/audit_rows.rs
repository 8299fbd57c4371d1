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

const PAGE_SQL: &str = "SELECT * FROM audit_log WHERE sequence < ?1 AND sequence >= ?2 \
     AND (?3 IS NULL OR at_unix_ms >= ?3) AND (?4 IS NULL OR at_unix_ms < ?4) \
     ORDER BY sequence DESC LIMIT ?5";
const PAGE_BY_ACTOR_SQL: &str = "SELECT * FROM audit_log WHERE sequence < ?1 AND sequence >= ?2 \
     AND (?3 IS NULL OR at_unix_ms >= ?3) AND (?4 IS NULL OR at_unix_ms < ?4) \
     AND actor_user = ?5 ORDER BY sequence DESC LIMIT ?6";
const PAGE_BY_KIND_SQL: &str = "SELECT * FROM audit_log WHERE sequence < ?1 AND sequence >= ?2 \
     AND (?3 IS NULL OR at_unix_ms >= ?3) AND (?4 IS NULL OR at_unix_ms < ?4) \
     AND kind = ?5 ORDER BY sequence DESC LIMIT ?6";
const PAGE_BY_ACTOR_AND_KIND_SQL: &str = "SELECT * FROM audit_log WHERE sequence < ?1 AND sequence >= ?2 \
     AND (?3 IS NULL OR at_unix_ms >= ?3) AND (?4 IS NULL OR at_unix_ms < ?4) \
     AND actor_user = ?5 AND kind = ?6 ORDER BY sequence DESC LIMIT ?7";

/// Which entries a page of the log holds (see [`Store::audit_rows_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRowFilter {
    /// Only entries with a sequence below this (exclusive); the newest first when `None`.
    pub before: Option<i64>,
    /// Only entries recorded at or after this time.
    pub since_unix_ms: Option<i64>,
    /// Only entries recorded before this time.
    pub until_unix_ms: Option<i64>,
    /// Only entries of this occcd user.
    pub actor_user: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<String>,
}

/// One page: matching entries, newest first, and where the examined range ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRowPage {
    /// Up to the limit of matching entries, by descending sequence.
    pub rows: Vec<AuditRow>,
    /// The lowest sequence examined; entries below it were not looked at.
    pub examined_down_to: i64,
}

impl Store {
    /// Matching entries, newest first, examining at most `window` entries
    /// below `filter.before` so one call costs the same whatever the filter
    /// (a rare kind takes several pages instead of one long scan).
    pub async fn audit_rows_page(
        &self,
        filter: &AuditRowFilter,
        limit: u32,
        window: u32,
    ) -> Result<AuditRowPage, StoreError> {
        // A token above the newest entry (made up, not given out) starts at
        // the newest: no walk through empty windows.
        let newest = self.newest_audit_sequence().await?;
        let above_newest = newest.unwrap_or(0).saturating_add(1);
        let upper = filter
            .before
            .map_or(above_newest, |before| before.min(above_newest));
        let lower = upper.saturating_sub(i64::from(window)).max(1);
        // One static statement per indexed filter, so SQLite can walk the
        // kind or user index instead of every entry in the range.
        let sql = match (filter.actor_user.is_some(), filter.kind.is_some()) {
            (false, false) => PAGE_SQL,
            (true, false) => PAGE_BY_ACTOR_SQL,
            (false, true) => PAGE_BY_KIND_SQL,
            (true, true) => PAGE_BY_ACTOR_AND_KIND_SQL,
        };
        let mut query = sqlx::query(sql)
            .bind(upper)
            .bind(lower)
            .bind(filter.since_unix_ms)
            .bind(filter.until_unix_ms);
        if let Some(actor) = &filter.actor_user {
            query = query.bind(actor);
        }
        if let Some(kind) = &filter.kind {
            query = query.bind(kind);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let examined_down_to = if rows.len() == limit as usize {
            rows.last().map_or(lower, |row| row.sequence)
        } else {
            lower
        };
        Ok(AuditRowPage {
            rows,
            examined_down_to,
        })
    }

    /// The newest entry's sequence: read once per version of the log (one
    /// query less per page while nothing is appended).
    async fn newest_audit_sequence(&self) -> Result<Option<i64>, StoreError> {
        // Read the version first: an append that ends after it raises it.
        let version = self.audit_version();
        if let Some(newest) = self.newest_audit.get(version) {
            return Ok(newest);
        }
        let newest: Option<i64> = sqlx::query_scalar("SELECT max(sequence) FROM audit_log")
            .fetch_one(&self.pool)
            .await?;
        self.newest_audit.put(version, newest);
        Ok(newest)
    }

    /// Appends `rows` in one transaction.
    pub async fn append_audit_rows(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let _changing = self.audit_change();
        let mut tx = self.write_transaction().await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sequence: i64) -> AuditRow {
        AuditRow {
            sequence,
            at_unix_ms: sequence * 1_000,
            kind: "login_failed".into(),
            actor_uid: Some(1000),
            actor_gid: Some(1000),
            actor_pid: None,
            actor_user: None,
            detail: "{}".into(),
            prev_hash: vec![0; 32],
            entry_hash: vec![1; 32],
        }
    }

    async fn newest_page(store: &Store) -> Vec<i64> {
        let page = store
            .audit_rows_page(&AuditRowFilter::default(), 10, 100)
            .await
            .unwrap();
        page.rows.iter().map(|row| row.sequence).collect()
    }

    #[tokio::test]
    async fn the_newest_page_follows_every_append() {
        let folder = tempfile::tempdir().unwrap();
        let store = super::super::open_for_test(folder.path()).await;
        assert!(newest_page(&store).await.is_empty());
        store.append_audit_rows(&[row(1), row(2)]).await.unwrap();
        assert_eq!(newest_page(&store).await, [2, 1]);
        assert_eq!(newest_page(&store).await, [2, 1], "read again unchanged");
        store.append_audit_rows(&[row(3)]).await.unwrap();
        assert_eq!(newest_page(&store).await, [3, 2, 1]);
        store.close().await;
    }
}
