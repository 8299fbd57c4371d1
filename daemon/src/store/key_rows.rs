//! Rows of a master key rotation: the wrapped data root, and every sealed
//! value re-sealed under a new key.
//!
//! Invariant: [`SEALED_COLUMNS`] names every column holding a value sealed
//! with the master key's sealing key, with the seal context its writer
//! uses (a test fails when a migration adds a BLOB column this list and
//! [`UNSEALED_BLOB_COLUMNS`] do not name); a rotation re-seals all of them
//! and stores the new wrapped root in one transaction, so a copy holds
//! either only old-key values or only new-key ones.

use sqlx::AssertSqlSafe;

use super::{Store, StoreError};
use crate::crypto::SealContext;

/// A sealed column and how its writer names the seal context: SQL
/// expressions, over the row, of the context's column and row.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    /// The table (also the context's table).
    pub table: &'static str,
    /// The column holding sealed bytes.
    pub column: &'static str,
    /// SQL giving the context's column name.
    context_column: &'static str,
    /// SQL giving the context's row name.
    context_row: &'static str,
}

/// Every sealed column (see the module's invariant).
pub const SEALED_COLUMNS: [SealedColumn; 5] = [
    SealedColumn {
        table: "users",
        column: "totp_secret",
        context_column: "'totp_secret'",
        context_row: "CAST(id AS TEXT)",
    },
    SealedColumn {
        table: "users",
        column: "totp_pending_secret",
        context_column: "'totp_pending_secret'",
        context_row: "CAST(id AS TEXT)",
    },
    SealedColumn {
        table: "snapshot_artifacts",
        column: "sealed",
        context_column: "name",
        context_row: "snapshot_id",
    },
    SealedColumn {
        table: "snapshot_chunks",
        column: "sealed",
        context_column: "name",
        context_row: "snapshot_id || '/' || seq",
    },
    SealedColumn {
        table: "openclaw_config_versions",
        column: "text_sealed",
        context_column: "'text_sealed'",
        context_row: "container || '/' || number",
    },
];

/// Rows re-sealed per read, so a large snapshot never sits whole in memory.
const RESEAL_BATCH: i64 = 16;

impl Store {
    /// The data root sealed under the master key, if the key was ever
    /// rotated.
    pub async fn wrapped_data_root(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM data_root_key WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Re-seals every value of [`SEALED_COLUMNS`] with `reseal` (given the
    /// value's context and its sealed bytes) and stores `wrapped_root`, in
    /// one transaction; returns how many values were re-sealed. Nothing is
    /// written if `reseal` refuses one.
    pub async fn reseal_all<F>(&self, wrapped_root: &[u8], reseal: F) -> Result<u64, StoreError>
    where
        F: Fn(&SealContext<'_>, &[u8]) -> Result<Vec<u8>, String>,
    {
        let mut tx = self.write_transaction().await?;
        let mut count = 0_u64;
        for sealed in SEALED_COLUMNS {
            // Built only from the constant catalogue above: no input reaches it.
            let select = format!(
                "SELECT rowid, {context_column}, {context_row}, {column} FROM {table} \
                 WHERE rowid > ?1 AND {column} IS NOT NULL ORDER BY rowid LIMIT ?2",
                context_column = sealed.context_column,
                context_row = sealed.context_row,
                column = sealed.column,
                table = sealed.table,
            );
            let update = format!(
                "UPDATE {table} SET {column} = ?1 WHERE rowid = ?2",
                table = sealed.table,
                column = sealed.column,
            );
            let mut after = 0_i64;
            loop {
                let rows: Vec<(i64, String, String, Vec<u8>)> =
                    sqlx::query_as(AssertSqlSafe(select.as_str()))
                        .bind(after)
                        .bind(RESEAL_BATCH)
                        .fetch_all(&mut *tx)
                        .await?;
                let Some(last) = rows.last() else { break };
                after = last.0;
                for (rowid, column, row, value) in rows {
                    let context = SealContext {
                        table: sealed.table,
                        column: &column,
                        row: &row,
                    };
                    let resealed = reseal(&context, &value).map_err(|why| {
                        StoreError::Unsealable(format!(
                            "{}.{} of row {row}: {why}",
                            sealed.table, sealed.column
                        ))
                    })?;
                    sqlx::query(AssertSqlSafe(update.as_str()))
                        .bind(resealed)
                        .bind(rowid)
                        .execute(&mut *tx)
                        .await?;
                    count += 1;
                }
            }
        }
        sqlx::query(
            "INSERT INTO data_root_key (id, sealed) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
        )
        .bind(wrapped_root)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BLOB columns that hold no sealed value: HMACs keyed by the data root,
    /// public keys, signatures — and the wrapped root itself.
    const UNSEALED_BLOB_COLUMNS: [(&str, &str); 10] = [
        ("audit_log", "prev_hash"),
        ("audit_log", "entry_hash"),
        ("users", "enrollment_token_hash"),
        ("recovery_codes", "code_hash"),
        ("sessions", "token_hash"),
        ("device_keys", "public_key"),
        ("snapshots", "manifest_hmac"),
        ("audit_checkpoints", "link"),
        ("audit_checkpoints", "signature"),
        ("data_root_key", "sealed"),
    ];

    #[tokio::test]
    async fn every_blob_column_is_either_resealed_or_known_to_hold_no_sealed_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT m.name, c.name, c.type FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let mut blobs: Vec<(String, String)> = columns
            .into_iter()
            .filter(|(_, _, kind)| kind.eq_ignore_ascii_case("BLOB"))
            .map(|(table, column, _)| (table, column))
            .collect();
        blobs.sort();
        let mut known: Vec<(String, String)> = SEALED_COLUMNS
            .iter()
            .map(|sealed| (sealed.table.to_owned(), sealed.column.to_owned()))
            .chain(
                UNSEALED_BLOB_COLUMNS
                    .iter()
                    .map(|(table, column)| ((*table).to_owned(), (*column).to_owned())),
            )
            .collect();
        known.sort();
        assert_eq!(blobs, known);
        // Every catalogue query runs on the schema.
        let count = store
            .reseal_all(b"root", |_, value| Ok(value.to_vec()))
            .await
            .unwrap();
        assert_eq!(count, 0);
        assert_eq!(
            store.wrapped_data_root().await.unwrap(),
            Some(b"root".to_vec())
        );
        store.close().await;
    }
}
