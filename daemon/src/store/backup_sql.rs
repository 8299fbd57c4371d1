//! SQL of backups: an encrypted copy of the whole database, and the checks
//! a restore runs on one.
//!
//! Invariant: the copy is written by SQLCipher under the key given, by one
//! statement in one read transaction, so it is a consistent snapshot while
//! writers go on; the key is a bound value on a connection whose statements
//! are never logged.

use zeroize::Zeroizing;

use super::{Store, StoreError};
use crate::crypto::Subkey;

impl Store {
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

    /// What SQLite's `integrity_check` and SQLCipher's
    /// `cipher_integrity_check` find wrong (empty: nothing).
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        problems.retain(|line| line != "ok");
        let cipher: Vec<String> = sqlx::query_scalar("PRAGMA cipher_integrity_check")
            .fetch_all(&self.pool)
            .await?;
        problems.extend(cipher);
        Ok(problems)
    }
}
