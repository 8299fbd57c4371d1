//! SQL for integrity findings: the history of every finding, and the event
//! findings that stay open until someone acknowledges them.
//!
//! Invariant: the history keeps the newest [`MAX_FINDINGS`] rows; open
//! findings are never pruned, and there is at most one per container and
//! check (repeats count up), so they stay few; acknowledging removes the
//! open row and marks its history rows with who, when and why, in one
//! transaction.

use sqlx::Row;

use super::{Store, StoreError};

/// Findings kept in the history; older ones are pruned — critical ones
/// apart, so a flood of lesser findings cannot push them out.
pub const MAX_FINDINGS: i64 = 50_000;
/// Critical findings kept in the history.
pub const MAX_CRITICAL_FINDINGS: i64 = 10_000;

/// A recorded finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    /// Container.
    pub container: String,
    /// Check id.
    pub check_id: String,
    /// Severity name.
    pub severity: String,
    /// Summary.
    pub summary: String,
    /// JSON evidence.
    pub evidence: String,
    /// When.
    pub observed_at: i64,
    /// Who acknowledged it, when, and why (history rows only).
    pub acknowledged: Option<(String, i64, String)>,
}

/// An event finding awaiting acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFindingRow {
    /// The latest occurrence.
    pub latest: FindingRow,
    /// When it was first seen.
    pub first_seen: i64,
    /// How often it was seen.
    pub occurrences: i64,
}

/// What an acknowledgement closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// Check id.
    pub check_id: String,
    /// How often it had been seen.
    pub occurrences: i64,
}

impl Store {
    /// Records findings and prunes the oldest beyond [`MAX_FINDINGS`].
    pub async fn record_findings(&self, findings: &[FindingRow]) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let _changing = self.findings_change();
        let mut tx = self.write_transaction().await?;
        for finding in findings {
            sqlx::query(
                "INSERT INTO integrity_findings (container, check_id, severity, summary, evidence, observed_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&finding.container)
            .bind(&finding.check_id)
            .bind(&finding.severity)
            .bind(&finding.summary)
            .bind(&finding.evidence)
            .bind(finding.observed_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM integrity_findings WHERE severity <> 'critical' \
             AND id <= (SELECT MAX(id) FROM integrity_findings) - ?",
        )
        .bind(MAX_FINDINGS)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM integrity_findings WHERE severity = 'critical' AND id < \
             (SELECT id FROM integrity_findings WHERE severity = 'critical' \
              ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(MAX_CRITICAL_FINDINGS - 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Findings, newest first; of one container when `container` is set.
    pub async fn findings(
        &self,
        container: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FindingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM integrity_findings WHERE (?1 IS NULL OR container = ?1) \
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(container)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decode_history).collect::<Result<_, _>>()?)
    }

    /// Stores `open` as the open finding of its container and check
    /// (replacing the previous one, whose count it carries).
    pub async fn keep_open_finding(&self, open: &OpenFindingRow) -> Result<(), StoreError> {
        let latest = &open.latest;
        sqlx::query(
            "INSERT INTO integrity_open_findings \
             (container, check_id, severity, summary, evidence, first_seen, last_seen, occurrences) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (container, check_id) DO UPDATE SET severity = excluded.severity, \
             summary = excluded.summary, evidence = excluded.evidence, \
             last_seen = excluded.last_seen, occurrences = excluded.occurrences",
        )
        .bind(&latest.container)
        .bind(&latest.check_id)
        .bind(&latest.severity)
        .bind(&latest.summary)
        .bind(&latest.evidence)
        .bind(open.first_seen)
        .bind(latest.observed_at)
        .bind(open.occurrences)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every open finding.
    pub async fn open_findings(&self) -> Result<Vec<OpenFindingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT container, check_id, severity, summary, evidence, last_seen AS observed_at, \
             first_seen, occurrences FROM integrity_open_findings ORDER BY container, check_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let decode_open = |row: &sqlx::sqlite::SqliteRow| -> Result<OpenFindingRow, sqlx::Error> {
            Ok(OpenFindingRow {
                latest: decode(row)?,
                first_seen: row.try_get("first_seen")?,
                occurrences: row.try_get("occurrences")?,
            })
        };
        Ok(rows.iter().map(decode_open).collect::<Result<_, _>>()?)
    }

    /// Closes the open findings `check_ids` of `container`: removes them and
    /// marks their history rows acknowledged by `by` at `now` with `note`.
    /// Returns what it closed (ids not open are skipped).
    pub async fn acknowledge_findings(
        &self,
        container: &str,
        check_ids: &[String],
        by: &str,
        note: &str,
        now: i64,
    ) -> Result<Vec<Acknowledged>, StoreError> {
        let _changing = self.findings_change();
        let mut tx = self.write_transaction().await?;
        let mut closed = Vec::new();
        for check_id in check_ids {
            let removed = sqlx::query(
                "DELETE FROM integrity_open_findings WHERE container = ? AND check_id = ? \
                 RETURNING occurrences",
            )
            .bind(container)
            .bind(check_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(removed) = removed else {
                continue;
            };
            sqlx::query(
                "UPDATE integrity_findings SET acknowledged_at = ?, acknowledged_by = ?, \
                 acknowledgement = ? WHERE container = ? AND check_id = ? AND acknowledged_at IS NULL",
            )
            .bind(now)
            .bind(by)
            .bind(note)
            .bind(container)
            .bind(check_id)
            .execute(&mut *tx)
            .await?;
            closed.push(Acknowledged {
                check_id: check_id.clone(),
                occurrences: removed.try_get("occurrences")?,
            });
        }
        tx.commit().await?;
        Ok(closed)
    }
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<FindingRow, sqlx::Error> {
    Ok(FindingRow {
        container: row.try_get("container")?,
        check_id: row.try_get("check_id")?,
        severity: row.try_get("severity")?,
        summary: row.try_get("summary")?,
        evidence: row.try_get("evidence")?,
        observed_at: row.try_get("observed_at")?,
        acknowledged: None,
    })
}

fn decode_history(row: &sqlx::sqlite::SqliteRow) -> Result<FindingRow, sqlx::Error> {
    let at: Option<i64> = row.try_get("acknowledged_at")?;
    let by: Option<String> = row.try_get("acknowledged_by")?;
    let note: Option<String> = row.try_get("acknowledgement")?;
    Ok(FindingRow {
        acknowledged: at.map(|at| (by.unwrap_or_default(), at, note.unwrap_or_default())),
        ..decode(row)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(severity: &str, n: i64) -> FindingRow {
        FindingRow {
            container: "c".to_owned(),
            check_id: if severity == "critical" {
                "event.exec"
            } else {
                "files.drift"
            }
            .to_owned(),
            severity: severity.to_owned(),
            summary: format!("#{n}"),
            evidence: "{}".to_owned(),
            observed_at: n,
            acknowledged: None,
        }
    }

    #[tokio::test]
    async fn a_flood_of_lesser_findings_never_prunes_the_critical_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.record_findings(&[row("critical", 0)]).await.unwrap();
        let flood: Vec<FindingRow> = (1..=MAX_FINDINGS + 10).map(|n| row("high", n)).collect();
        for batch in flood.chunks(5_000) {
            store.record_findings(batch).await.unwrap();
        }
        let kept = store.findings(Some("c"), u32::MAX).await.unwrap();
        assert!(
            kept.iter().any(|f| f.severity == "critical"),
            "the exec was pruned"
        );
        let lesser = kept.iter().filter(|f| f.severity == "high").count();
        assert!(lesser <= usize::try_from(MAX_FINDINGS).unwrap(), "{lesser}");
        store.close().await;
    }

    #[tokio::test]
    async fn every_write_to_the_history_raises_the_findings_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let start = store.findings_version();
        store.record_findings(&[]).await.unwrap();
        assert_eq!(
            store.findings_version(),
            start,
            "nothing written, nothing raised"
        );
        store.record_findings(&[row("high", 1)]).await.unwrap();
        let recorded = store.findings_version();
        assert!(recorded > start);
        store
            .acknowledge_findings("c", &["files.drift".to_owned()], "ada", "seen", 2)
            .await
            .unwrap();
        assert!(store.findings_version() > recorded);
        store.close().await;
    }
}
