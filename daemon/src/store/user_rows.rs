//! SQL for `users` and `recovery_codes`.
//!
//! Invariant: state changes that must not race (replay guard, single-use
//! codes, enrolment tokens) are single conditional UPDATEs whose affected-row
//! count says whether this caller won.

use sqlx::{Row, sqlite::SqliteRow};

use super::{Store, StoreError};

/// A `users` row. `Debug` leaves out the password hash and sealed secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Primary key.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// `enrolling`, `active` or `disabled`.
    pub state: String,
    /// Argon2id PHC string.
    pub password_phc: Option<String>,
    /// Sealed TOTP secret.
    pub totp_secret: Option<Vec<u8>>,
    /// Sealed TOTP secret awaiting confirmation.
    pub totp_pending_secret: Option<Vec<u8>>,
    /// Last accepted TOTP step.
    pub totp_last_step: Option<i64>,
    /// Enrolment deadline.
    pub enrollment_expires_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Raised by every change to the account's role, state or credentials.
    pub generation: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

pub(super) fn decode_user(row: &SqliteRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: row.try_get("role")?,
        state: row.try_get("state")?,
        password_phc: row.try_get("password_phc")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_pending_secret: row.try_get("totp_pending_secret")?,
        totp_last_step: row.try_get("totp_last_step")?,
        enrollment_expires_at: row.try_get("enrollment_expires_at")?,
        created_at: row.try_get("created_at")?,
        generation: row.try_get("generation")?,
    })
}

impl Store {
    /// Number of users in `states`.
    pub async fn count_users_in(&self, states: &[&str]) -> Result<i64, StoreError> {
        let mut count = 0;
        for state in states {
            let row = sqlx::query("SELECT count(*) AS n FROM users WHERE state = ?")
                .bind(state)
                .fetch_one(&self.pool)
                .await?;
            count += row.try_get::<i64, _>("n")?;
        }
        Ok(count)
    }

    /// Active super-admins.
    pub async fn count_active_super_admins(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM users WHERE role = 'super-admin' AND state = 'active'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The user named `username`.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode_user).transpose()?)
    }

    /// The user with `id`.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(decode_user).transpose()?)
    }

    /// The user whose unexpired enrolment token hashes to `token_hash`.
    pub async fn user_by_enrollment_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM users WHERE enrollment_token_hash = ? AND enrollment_expires_at > ? AND state = 'enrolling'",
        ).bind(token_hash).bind(now).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_user).transpose()?)
    }

    /// Every user, by name.
    pub async fn all_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(decode_user).collect::<Result<_, _>>()?)
    }

    /// Creates an enrolling user with an enrolment token; returns its id.
    pub async fn insert_enrolling_user(
        &self,
        username: &str,
        role: &str,
        password_phc: Option<&str>,
        token_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let _changing = self.accounts_change();
        let row = sqlx::query(
            "INSERT INTO users (username, role, state, password_phc, enrollment_token_hash, enrollment_expires_at, \
             created_at, updated_at) VALUES (?, ?, 'enrolling', ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(username)
        .bind(role)
        .bind(password_phc)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now)
        .bind(now)
        // All rows, not the first: SQLite commits when the statement runs to
        // its end, and only then says whether the commit failed (a full
        // disk); taking one row would report a write that was rolled back.
        .fetch_all(&self.pool)
        .await?;
        let row = row.first().ok_or(sqlx::Error::RowNotFound)?;
        Ok(row.try_get("id")?)
    }

    /// Removes users still enrolling whose token expired (and, with
    /// `all_enrolling`, every enrolling user: a repeated bootstrap).
    pub async fn delete_stale_enrolling_users(
        &self,
        now: i64,
        all_enrolling: bool,
    ) -> Result<u64, StoreError> {
        let _changing = self.accounts_change();
        let result = sqlx::query(
            "DELETE FROM users WHERE state = 'enrolling' AND (? OR enrollment_expires_at <= ?)",
        )
        .bind(all_enrolling)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Sets columns of one user; `None` arguments leave columns unchanged.
    /// Returns the row's generation afterwards (raised by one when
    /// `change.bump_generation`), or `None` when there is no such user.
    pub async fn update_user(
        &self,
        id: i64,
        change: &UserChange<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _changing = self.accounts_change();
        let generation: Vec<i64> = sqlx::query_scalar(
            "UPDATE users SET role = coalesce(?, role), state = coalesce(?, state), \
             password_phc = coalesce(?, password_phc), \
             totp_pending_secret = CASE WHEN ? THEN ? ELSE totp_pending_secret END, \
             totp_secret = CASE WHEN ? THEN ? ELSE totp_secret END, \
             totp_last_step = CASE WHEN ? THEN ? ELSE totp_last_step END, \
             enrollment_token_hash = CASE WHEN ? THEN ? ELSE enrollment_token_hash END, \
             enrollment_expires_at = CASE WHEN ? THEN ? ELSE enrollment_expires_at END, \
             generation = generation + ?, \
             updated_at = ? WHERE id = ? RETURNING generation",
        )
        .bind(change.role)
        .bind(change.state)
        .bind(change.password_phc)
        .bind(change.totp_pending_secret.is_some())
        .bind(change.totp_pending_secret.flatten())
        .bind(change.totp_secret.is_some())
        .bind(change.totp_secret.flatten())
        .bind(change.totp_last_step.is_some())
        .bind(change.totp_last_step.flatten())
        .bind(change.enrollment.is_some())
        .bind(change.enrollment.flatten().map(|(hash, _)| hash))
        .bind(change.enrollment.is_some())
        .bind(change.enrollment.flatten().map(|(_, expires)| expires))
        .bind(i64::from(change.bump_generation))
        .bind(now)
        .bind(id)
        // To the statement's end, where SQLite commits (see insert_enrolling_user).
        .fetch_all(&self.pool)
        .await?;
        Ok(generation.first().copied())
    }

    /// Replaces the password hash `old_phc` with `new_phc` (same password,
    /// new cost) only if the account still has that hash at `generation`;
    /// false when a change came first.
    pub async fn rehash_password(
        &self,
        id: i64,
        old_phc: &str,
        new_phc: &str,
        generation: i64,
    ) -> Result<bool, StoreError> {
        // Not raising the accounts version: no profile shows the hash.

        let result = sqlx::query(
            "UPDATE users SET password_phc = ? WHERE id = ? AND password_phc = ? AND generation = ?",
        )
        .bind(new_phc)
        .bind(id)
        .bind(old_phc)
        .bind(generation)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Raises every account's generation (all sessions were revoked).
    pub async fn bump_all_generations(&self) -> Result<(), StoreError> {
        let _changing = self.accounts_change();
        sqlx::query("UPDATE users SET generation = generation + 1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records `step` as the last accepted TOTP step if it is newer; false
    /// when another login already used this or a later step.
    pub async fn advance_totp_step(&self, id: i64, step: i64) -> Result<bool, StoreError> {
        // Not raising the accounts version: no profile shows the step.

        let result = sqlx::query(
            "UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
        )
        .bind(step)
        .bind(id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a user (sessions and codes go with it).
    pub async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        let _changing = self.accounts_change();
        let result = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces a user's recovery codes with `hashes`.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let _changing = self.accounts_change();
        let mut tx = self.write_transaction().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for (slot, hash) in (0_i64..).zip(hashes) {
            sqlx::query("INSERT INTO recovery_codes (user_id, slot, code_hash) VALUES (?, ?, ?)")
                .bind(user_id)
                .bind(slot)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// (slot, hash) of the user's unused recovery codes.
    pub async fn unused_recovery_codes(
        &self,
        user_id: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let rows = sqlx::query("SELECT slot, code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL ORDER BY slot")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("slot")?, row.try_get("code_hash")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Marks the code in `slot` used if it is still the code hashed to
    /// `code_hash` and unused; false otherwise (used meanwhile, or the set
    /// was regenerated).
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        slot: i64,
        code_hash: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let _changing = self.accounts_change();
        let result = sqlx::query("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND slot = ? AND code_hash = ? AND used_at IS NULL")
            .bind(now)
            .bind(user_id)
            .bind(slot)
            .bind(code_hash)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Columns to change in [`Store::update_user`]. For the `Option<Option<_>>`
/// fields, `Some(None)` clears the column and `None` leaves it.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserChange<'a> {
    /// New role.
    pub role: Option<&'a str>,
    /// New state.
    pub state: Option<&'a str>,
    /// New password hash.
    pub password_phc: Option<&'a str>,
    /// New pending TOTP secret (sealed).
    pub totp_pending_secret: Option<Option<&'a [u8]>>,
    /// New TOTP secret (sealed).
    pub totp_secret: Option<Option<&'a [u8]>>,
    /// New last TOTP step.
    pub totp_last_step: Option<Option<i64>>,
    /// New enrolment token hash and expiry.
    pub enrollment: Option<Option<(&'a [u8], i64)>>,
    /// Raise the generation: sessions and logins under the old one end.
    pub bump_generation: bool,
}

#[cfg(test)]
mod tests {
    use crate::store::open_for_test;

    /// A login's re-hash at a new cost is written only over the hash it
    /// verified, at the generation it read: a password change or any
    /// account change that came first wins.
    #[tokio::test]
    async fn a_rehash_is_written_only_if_the_account_is_unchanged() {
        let folder = tempfile::tempdir().unwrap();
        let store = open_for_test(folder.path()).await;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, role, state, password_phc, created_at, updated_at, generation) \
             VALUES ('ada', 'viewer', 'active', 'old', 0, 0, 3) RETURNING id",
        )
        .fetch_one(store.raw_pool())
        .await
        .unwrap();
        let phc = || async {
            sqlx::query_scalar::<_, String>("SELECT password_phc FROM users WHERE id = ?")
                .bind(id)
                .fetch_one(store.raw_pool())
                .await
                .unwrap()
        };
        assert!(!store.rehash_password(id, "old", "new", 2).await.unwrap());
        assert!(
            !store
                .rehash_password(id, "changed", "new", 3)
                .await
                .unwrap()
        );
        assert_eq!(phc().await, "old", "neither wrote");
        assert!(store.rehash_password(id, "old", "new", 3).await.unwrap());
        assert_eq!(phc().await, "new");
    }
}
