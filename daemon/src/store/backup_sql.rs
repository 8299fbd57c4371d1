//! SQL of backups: an encrypted copy of the whole database, and the checks
//! a restore runs on one.
//!
//! Invariant: the copy is written by SQLCipher under the key given, by one
//! statement in one read transaction, so it is a consistent snapshot while
//! writers go on; the key is a bound value on a connection whose statements
//! are never logged.

use std::path::Path;

use sqlx::sqlite::SqlitePoolOptions;
use zeroize::Zeroizing;

use super::{Store, StoreError, classify, keyed_options};
use crate::crypto::Subkey;

impl Store {
    /// Opens the database at `path` to be checked: read-only, one
    /// connection, no migration, and its schema not trusted to run
    /// functions with side effects.
    pub async fn open_to_check(path: &Path, key: &Subkey) -> Result<Self, StoreError> {
        Self::open_checked(path, key, true).await
    }

    /// Opens a private copy (a restore's, extracted from a backup) to be
    /// checked: as [`Store::open_to_check`], but the file opened for
    /// writing while `query_only` still refuses every statement that would
    /// write — SQLite parses a table's CHECK constraints, and so its
    /// integrity check verifies them, only on a connection that may write.
    pub async fn open_copy_to_check(path: &Path, key: &Subkey) -> Result<Self, StoreError> {
        Self::open_checked(path, key, false).await
    }

    async fn open_checked(path: &Path, key: &Subkey, read_only: bool) -> Result<Self, StoreError> {
        let options = keyed_options(path, key)?
            .read_only(read_only)
            .pragma("query_only", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|err| classify(err, path))?;
        let store = Self::with_pool(pool, std::sync::Arc::default(), true);
        // The key is proven by the first read, not by opening.
        if let Err(err) = sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&store.pool)
            .await
        {
            store.close().await;
            return Err(classify(err, path));
        }
        Ok(store)
    }

    /// Which life of the store this is, for event receivers: `0` for a store
    /// never restored, else `<sequence>-<ms>` of its newest `store_restored`
    /// entry (so an id is never reused within one `(host, store)`).
    pub async fn store_life(&self) -> Result<String, StoreError> {
        let newest: Option<(i64, i64)> = sqlx::query_as(
            "SELECT sequence, at_unix_ms FROM audit_log WHERE kind = 'store_restored' \
             ORDER BY sequence DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(newest.map_or_else(
            || "0".to_owned(),
            |(sequence, at)| format!("{sequence}-{at}"),
        ))
    }

    /// Writes the whole database, encrypted with `key`, to the file
    /// `target` (which must not exist).
    pub async fn export_encrypted(&self, target: &str, key: &Subkey) -> Result<(), StoreError> {
        let key_text = Zeroizing::new(format!("x'{}'", hex::encode(key.expose())));
        let mut connection = self.pool.acquire().await?;
        sqlx::query("ATTACH DATABASE ?1 AS backup KEY ?2")
            .bind(target)
            .bind(key_text.as_str())
            .execute(&mut *connection)
            .await?;
        let exported = sqlx::query("SELECT sqlcipher_export('backup')")
            .execute(&mut *connection)
            .await;
        let detached = sqlx::query("DETACH DATABASE backup")
            .execute(&mut *connection)
            .await;
        exported?;
        detached?;
        Ok(())
    }

    /// What SQLCipher's `cipher_integrity_check` (every page's
    /// authentication code) and then SQLite's `integrity_check` find wrong
    /// (empty: nothing). A page that fails its code stops SQLite's check
    /// with a bare "SQL logic error", so the pages are checked first and
    /// SQLite's check only on pages that all authenticate.
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let cipher: Vec<String> = sqlx::query_scalar("PRAGMA cipher_integrity_check")
            .fetch_all(&self.pool)
            .await?;
        if !cipher.is_empty() {
            return Ok(cipher);
        }
        let mut problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        problems.retain(|line| line != "ok");
        Ok(problems)
    }
}
