//! The database's schema as this occcd's migrations make it, and the
//! comparison a restore runs before it trusts a copy.
//!
//! Invariant: a copy is accepted only if its schema — every row of
//! `sqlite_schema`, SQLite's own included — is exactly the one this
//! occcd's migrations make, before migrating (up to the migration it
//! records) and after: so a copy that lost an append-only trigger or a
//! CHECK constraint, or gained an object (under any name), is refused.

use sqlx::sqlite::SqlitePoolOptions;

use super::{MIGRATOR, Store, StoreError};

/// One object of a database's schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct SchemaObject {
    /// `table`, `index`, `trigger` or `view`.
    #[sqlx(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The table it belongs to.
    pub tbl_name: String,
    /// The statement that made it (none for SQLite's own indexes).
    pub sql: Option<String>,
}

/// Every object, SQLite's own included (its automatic indexes are made
/// the same way for the same tables; occcd has no AUTOINCREMENT and never
/// runs ANALYZE, so any other `sqlite_…` row — which SQLite refuses to
/// create but loads from a file — is a difference), ordered.
const SCHEMA: &str = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name";

impl Store {
    /// This store's schema.
    pub async fn schema(&self) -> Result<Vec<SchemaObject>, StoreError> {
        Ok(sqlx::query_as(SCHEMA).fetch_all(&self.pool).await?)
    }

    /// The newest migration this database records as applied (0: none,
    /// or no record of migrations at all).
    pub async fn migration_version(&self) -> Result<i64, StoreError> {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        if recorded == 0 {
            return Ok(0);
        }
        Ok(sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// The schema a new store gets from this occcd's migrations — all of them,
/// or (`up_to`) those up to that version — in an in-memory database,
/// migrated and dropped.
pub async fn migrated_schema(up_to: Option<i64>) -> Result<Vec<SchemaObject>, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    let migrated = match up_to {
        None => MIGRATOR.run(&pool).await,
        Some(0) => Ok(()),
        Some(version) => MIGRATOR.run_to(version, &pool).await,
    };
    let schema = match migrated {
        Ok(()) => sqlx::query_as(SCHEMA).fetch_all(&pool).await,
        Err(err) => {
            pool.close().await;
            return Err(err.into());
        }
    };
    pool.close().await;
    Ok(schema?)
}

/// How `found` differs from `expected`, in words; `None` when they are
/// the same, object for object.
#[must_use]
pub fn difference(found: &[SchemaObject], expected: &[SchemaObject]) -> Option<String> {
    if found == expected {
        return None;
    }
    Some(
        first_difference(found, expected)
            .unwrap_or_else(|| "an object is listed more than once".to_owned()),
    )
}

/// The first way `found` differs from `expected`, in words; `None` when
/// they are the same.
fn first_difference(found: &[SchemaObject], expected: &[SchemaObject]) -> Option<String> {
    for object in expected {
        match found
            .iter()
            .find(|other| other.kind == object.kind && other.name == object.name)
        {
            None => return Some(format!("{} {} is missing", object.kind, object.name)),
            Some(other) if other != object => {
                return Some(format!(
                    "{} {} is not as occcd made it",
                    object.kind, object.name
                ));
            }
            Some(_) => {}
        }
    }
    found
        .iter()
        .find(|object| {
            !expected
                .iter()
                .any(|other| other.kind == object.kind && other.name == object.name)
        })
        .map(|extra| format!("{} {} is not occcd's", extra.kind, extra.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, sql: &str) -> SchemaObject {
        SchemaObject {
            kind: kind.to_owned(),
            name: name.to_owned(),
            tbl_name: "t".to_owned(),
            sql: Some(sql.to_owned()),
        }
    }

    #[test]
    fn a_missing_changed_or_extra_object_is_named() {
        let ours = vec![
            object("table", "t", "CREATE TABLE t (a CHECK (a > 0))"),
            object("trigger", "t_no_update", "CREATE TRIGGER t_no_update …"),
        ];
        assert_eq!(difference(&ours, &ours), None);
        assert_eq!(
            first_difference(&ours[..1], &ours).as_deref(),
            Some("trigger t_no_update is missing")
        );
        let loosened = vec![object("table", "t", "CREATE TABLE t (a)"), ours[1].clone()];
        assert_eq!(
            first_difference(&loosened, &ours).as_deref(),
            Some("table t is not as occcd made it")
        );
        let mut more = ours.clone();
        more.push(object("view", "v", "CREATE VIEW v AS SELECT 1"));
        assert_eq!(
            first_difference(&more, &ours).as_deref(),
            Some("view v is not occcd's")
        );
        let mut twice = ours.clone();
        twice.push(ours[1].clone());
        twice.sort();
        assert_eq!(
            difference(&twice, &ours).as_deref(),
            Some("an object is listed more than once")
        );
    }

    #[tokio::test]
    async fn a_new_store_has_the_migrated_schema_and_its_append_only_triggers() {
        let expected = migrated_schema(None).await.unwrap();
        assert!(
            expected
                .iter()
                .any(|object| object.kind == "trigger" && object.name == "audit_log_no_update"),
            "{expected:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = crate::crypto::KeyRing::from_bytes(zeroize::Zeroizing::new([3; 32]))
            .derive(crate::crypto::KeyPurpose::Database);
        let store = Store::open(&dir.path().join("occcd.db"), &key, true)
            .await
            .unwrap();
        let found = store.schema().await.unwrap();
        let version = store.migration_version().await.unwrap();
        store.close().await;
        assert_eq!(difference(&found, &expected), None);
        assert_eq!(
            version,
            MIGRATOR
                .iter()
                .map(|migration| migration.version)
                .max()
                .unwrap()
        );
        // Up to an earlier migration: fewer objects, the first ones alike.
        let first = migrated_schema(Some(1)).await.unwrap();
        assert!(!first.is_empty() && first.len() < expected.len());
        assert!(migrated_schema(Some(0)).await.unwrap().is_empty());
    }
}
