//! Rows of `output_cursors`: how far each event output has delivered the
//! audit log.
//!
//! Invariant: a cursor names the last audit entry its receiver acknowledged;
//! it is written only after that acknowledgement, so a crash at any point
//! makes an output deliver again, never skip.

use super::{Store, StoreError};

impl Store {
    /// The last entry `output` delivered, and to where, if it ever ran.
    pub async fn output_cursor(&self, output: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT delivered_through, destination FROM output_cursors WHERE output = ?",
        )
        .bind(output)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records that `output` delivered every entry up to `sequence` to
    /// `destination`.
    pub async fn set_output_cursor(
        &self,
        output: &str,
        destination: &str,
        sequence: i64,
        at_unix_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO output_cursors (output, destination, delivered_through, updated_at_unix_ms) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (output) DO UPDATE \
             SET destination = ?2, delivered_through = ?3, updated_at_unix_ms = ?4",
        )
        .bind(output)
        .bind(destination)
        .bind(sequence)
        .bind(at_unix_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_cursor_starts_unset_and_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        assert_eq!(store.output_cursor("syslog").await.unwrap(), None);
        store
            .set_output_cursor("syslog", "a:1", 7, 1)
            .await
            .unwrap();
        store
            .set_output_cursor("syslog", "b:2", 9, 2)
            .await
            .unwrap();
        assert_eq!(
            store.output_cursor("syslog").await.unwrap(),
            Some((9, "b:2".to_owned()))
        );
        assert_eq!(store.output_cursor("webhook").await.unwrap(), None);
        assert!(
            store
                .set_output_cursor("elsewhere", "", 1, 1)
                .await
                .is_err()
        );
        store.close().await;
    }
}
