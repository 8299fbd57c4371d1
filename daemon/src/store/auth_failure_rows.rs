//! SQL for `auth_failures`: the brute-force counters, so that a restart does
//! not forgive failed attempts.
//!
//! Invariant: one row per (kind, subject); saving replaces it in one
//! transaction with every other row of the same attempt.

use sqlx::Row;

use super::{Store, StoreError};

/// An `auth_failures` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureRow {
    /// `account`, `peer` or `biometric`.
    pub kind: &'static str,
    /// Username, or the uid in decimal.
    pub subject: String,
    /// Consecutive failures.
    pub consecutive: i64,
    /// Time of the latest.
    pub last_failure: i64,
    /// End of the lock, if locked.
    pub locked_until: Option<i64>,
}

/// The `kind` values, for decoding.
const KINDS: [&str; 3] = ["account", "peer", "biometric"];

impl Store {
    /// Inserts or replaces `rows` in one transaction.
    pub async fn save_auth_failures(&self, rows: &[AuthFailureRow]) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO auth_failures (kind, subject, consecutive, last_failure, locked_until) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, subject) DO UPDATE SET \
                 consecutive = excluded.consecutive, last_failure = excluded.last_failure, \
                 locked_until = excluded.locked_until",
            )
            .bind(row.kind)
            .bind(&row.subject)
            .bind(row.consecutive)
            .bind(row.last_failure)
            .bind(row.locked_until)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the rows of `keys` (kind, subject), in one transaction.
    pub async fn delete_auth_failures(
        &self,
        keys: &[(&'static str, String)],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_transaction().await?;
        for (kind, subject) in keys {
            sqlx::query("DELETE FROM auth_failures WHERE kind = ? AND subject = ?")
                .bind(kind)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored counter.
    pub async fn all_auth_failures(&self) -> Result<Vec<AuthFailureRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM auth_failures")
            .fetch_all(&self.pool)
            .await?;
        let mut decoded = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            // The CHECK constraint admits only these.
            let Some(kind) = KINDS.into_iter().find(|known| *known == kind) else {
                continue;
            };
            decoded.push(AuthFailureRow {
                kind,
                subject: row.try_get("subject")?,
                consecutive: row.try_get("consecutive")?,
                last_failure: row.try_get("last_failure")?,
                locked_until: row.try_get("locked_until")?,
            });
        }
        Ok(decoded)
    }
}
