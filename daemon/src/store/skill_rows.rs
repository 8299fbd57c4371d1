//! SQL for `skill_versions` and `skill_approvals`.
//!
//! Invariant: a state change happens only from the state the caller read
//! (conditional UPDATE), so two deciders racing cannot both win; an
//! approval and the state it completes are written in one transaction.

use sqlx::Row;

use super::{Store, StoreError};

/// One skill version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillRow {
    /// Tree hash (hex), the identity.
    pub tree_hash: String,
    /// Frontmatter `name`.
    pub name: String,
    /// Frontmatter `description`.
    pub description: String,
    /// `low` … `critical`.
    pub level: String,
    /// `pending`, `approved`, `rejected`, `revoked`.
    pub state: String,
    /// Who submitted it.
    pub submitted_by: String,
    /// When (ms).
    pub submitted_at: i64,
    /// Who decided (approved, rejected, revoked) last.
    pub decided_by: Option<String>,
    /// When (ms).
    pub decided_at: Option<i64>,
    /// Their note.
    pub note: Option<String>,
    /// ClawHub's fingerprint (hex).
    pub clawhub_fingerprint: String,
    /// Number of files.
    pub file_count: i64,
    /// Bytes of all files.
    pub total_bytes: i64,
    /// JSON manifest.
    pub manifest: String,
    /// JSON frontmatter.
    pub frontmatter: String,
    /// JSON signals.
    pub signals: String,
    /// When it was installed, while it is.
    pub installed_at: Option<i64>,
}

/// One approval of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillApprovalRow {
    /// Who approved.
    pub approver: String,
    /// When (ms).
    pub approved_at: i64,
    /// Their note.
    pub note: String,
}

/// A state change: from what the caller read, to what.
#[derive(Debug, Clone, Copy)]
pub struct SkillDecisionRow<'a> {
    /// Tree hash.
    pub tree_hash: &'a str,
    /// The state read.
    pub from: &'a str,
    /// The new state.
    pub to: &'a str,
    /// Who.
    pub by: &'a str,
    /// When (ms).
    pub at: i64,
    /// Their note.
    pub note: &'a str,
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<SkillRow, sqlx::Error> {
    Ok(SkillRow {
        tree_hash: row.try_get("tree_hash")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        level: row.try_get("level")?,
        state: row.try_get("state")?,
        submitted_by: row.try_get("submitted_by")?,
        submitted_at: row.try_get("submitted_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        note: row.try_get("note")?,
        clawhub_fingerprint: row.try_get("clawhub_fingerprint")?,
        file_count: row.try_get("file_count")?,
        total_bytes: row.try_get("total_bytes")?,
        // Listing leaves the large columns out.
        manifest: row.try_get("manifest").unwrap_or_default(),
        frontmatter: row.try_get("frontmatter").unwrap_or_default(),
        signals: row.try_get("signals").unwrap_or_default(),
        installed_at: row.try_get("installed_at")?,
    })
}

impl Store {
    /// Stores a new pending version; if the hash is known and was rejected
    /// or revoked, it is pending again under the new submitter. Returns
    /// false (and changes nothing) when it is pending or approved already.
    pub async fn submit_skill(&self, row: &SkillRow) -> Result<bool, StoreError> {
        let _changing = self.skills_change();
        let mut tx = self.write_transaction().await?;
        let result = sqlx::query(
            "INSERT INTO skill_versions (tree_hash, name, description, level, state, submitted_by, \
             submitted_at, clawhub_fingerprint, file_count, total_bytes, manifest, frontmatter, signals) \
             VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tree_hash) DO UPDATE SET state = 'pending', \
             submitted_at = excluded.submitted_at, decided_by = NULL, decided_at = NULL, note = NULL, \
             level = excluded.level, signals = excluded.signals \
             WHERE skill_versions.state IN ('rejected', 'revoked')",
        )
        .bind(&row.tree_hash)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.level)
        .bind(&row.submitted_by)
        .bind(row.submitted_at)
        .bind(&row.clawhub_fingerprint)
        .bind(row.file_count)
        .bind(row.total_bytes)
        .bind(&row.manifest)
        .bind(&row.frontmatter)
        .bind(&row.signals)
        .execute(&mut *tx)
        .await?;
        let fresh = result.rows_affected() == 1;
        sqlx::query(
            "INSERT INTO skill_submissions (tree_hash, submitter, submitted_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&row.tree_hash)
        .bind(&row.submitted_by)
        .bind(row.submitted_at)
        .execute(&mut *tx)
        .await?;
        if fresh {
            sqlx::query("DELETE FROM skill_approvals WHERE tree_hash = ?")
                .bind(&row.tree_hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// The version `tree_hash`.
    pub async fn skill(&self, tree_hash: &str) -> Result<Option<SkillRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM skill_versions WHERE tree_hash = ?")
            .bind(tree_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    /// Versions, newest first; of one name and/or state when given.
    pub async fn skills(
        &self,
        name: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SkillRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_hash, name, description, level, state, submitted_by, submitted_at, decided_by, \
             decided_at, note, clawhub_fingerprint, file_count, total_bytes, installed_at \
             FROM skill_versions WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR state = ?2) \
             ORDER BY submitted_at DESC, tree_hash LIMIT ?3",
        )
        .bind(name)
        .bind(state)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Approvals of `tree_hash`, oldest first.
    pub async fn skill_approvals(
        &self,
        tree_hash: &str,
    ) -> Result<Vec<SkillApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT approver, approved_at, note FROM skill_approvals WHERE tree_hash = ? ORDER BY approved_at, approver",
        )
        .bind(tree_hash)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SkillApprovalRow {
                    approver: row.try_get("approver")?,
                    approved_at: row.try_get("approved_at")?,
                    note: row.try_get("note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The approvals of the versions [`Self::skills`] lists for the same
    /// filter, by tree hash, oldest first.
    pub async fn approvals_of_listed_skills(
        &self,
        name: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<std::collections::HashMap<String, Vec<SkillApprovalRow>>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_hash, approver, approved_at, note FROM skill_approvals WHERE tree_hash IN \
             (SELECT tree_hash FROM skill_versions WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR state = ?2) \
              ORDER BY submitted_at DESC, tree_hash LIMIT ?3) \
             ORDER BY approved_at, approver",
        )
        .bind(name)
        .bind(state)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut by_hash: std::collections::HashMap<String, Vec<SkillApprovalRow>> =
            std::collections::HashMap::new();
        for row in &rows {
            by_hash
                .entry(row.try_get("tree_hash")?)
                .or_default()
                .push(SkillApprovalRow {
                    approver: row.try_get("approver")?,
                    approved_at: row.try_get("approved_at")?,
                    note: row.try_get("note")?,
                });
        }
        Ok(by_hash)
    }

    /// Everyone who submitted `tree_hash`.
    pub async fn skill_submitters(&self, tree_hash: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "SELECT submitter FROM skill_submissions WHERE tree_hash = ? ORDER BY submitted_at",
        )
        .bind(tree_hash)
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// Records an approval of `tree_hash` by `decision.by` if it is still
    /// pending at `level` and `decision.by` never submitted it nor approved
    /// it; completes it (approved) in the same transaction once it holds
    /// `needed` approvals. `None` when something changed meanwhile; else
    /// whether it is now approved.
    pub async fn approve_skill(
        &self,
        decision: SkillDecisionRow<'_>,
        level: &str,
        needed: i64,
    ) -> Result<Option<bool>, StoreError> {
        let _changing = self.skills_change();
        let mut tx = self.write_transaction().await?;
        let still: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM skill_versions WHERE tree_hash = ?1 AND state = 'pending' AND level = ?2 \
             AND NOT EXISTS (SELECT 1 FROM skill_submissions WHERE tree_hash = ?1 AND submitter = ?3)",
        )
        .bind(decision.tree_hash)
        .bind(level)
        .bind(decision.by)
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(None);
        }
        let inserted = sqlx::query(
            "INSERT INTO skill_approvals (tree_hash, approver, approved_at, note) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(decision.tree_hash)
        .bind(decision.by)
        .bind(decision.at)
        .bind(decision.note)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Ok(None);
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM skill_approvals WHERE tree_hash = ?")
                .bind(decision.tree_hash)
                .fetch_one(&mut *tx)
                .await?;
        let completes = count >= needed;
        if completes {
            sqlx::query(
                "UPDATE skill_versions SET state = 'approved', decided_by = ?, decided_at = ?, note = ? \
                 WHERE tree_hash = ? AND state = 'pending'",
            )
            .bind(decision.by)
            .bind(decision.at)
            .bind(decision.note)
            .bind(decision.tree_hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(completes))
    }

    /// Moves `tree_hash` from `decision.from` to `decision.to`; false when it
    /// was no longer in `from`.
    pub async fn decide_skill(&self, decision: SkillDecisionRow<'_>) -> Result<bool, StoreError> {
        let _changing = self.skills_change();
        let result = sqlx::query(
            "UPDATE skill_versions SET state = ?, decided_by = ?, decided_at = ?, note = ? \
             WHERE tree_hash = ? AND state = ?",
        )
        .bind(decision.to)
        .bind(decision.by)
        .bind(decision.at)
        .bind(decision.note)
        .bind(decision.tree_hash)
        .bind(decision.from)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks `tree_hash` installed at `at` (or not installed, with `None`).
    pub async fn set_skill_installed(
        &self,
        tree_hash: &str,
        at: Option<i64>,
    ) -> Result<(), StoreError> {
        let _changing = self.skills_change();
        sqlx::query("UPDATE skill_versions SET installed_at = ? WHERE tree_hash = ?")
            .bind(at)
            .bind(tree_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every installed version: (name, tree hash).
    pub async fn installed_skills(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, tree_hash FROM skill_versions WHERE installed_at IS NOT NULL ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("tree_hash")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Tree hashes of every approved version.
    pub async fn approved_skill_hashes(
        &self,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let hashes: Vec<String> =
            sqlx::query_scalar("SELECT tree_hash FROM skill_versions WHERE state = 'approved'")
                .fetch_all(&self.pool)
                .await?;
        Ok(hashes.into_iter().collect())
    }
}

#[cfg(test)]
#[path = "skill_rows_tests.rs"]
mod tests;
