//! The database's schema as this occcd's migrations make it, and the
//! comparison a restore runs before it trusts a copy.
//!
//! Invariant: a copy is accepted only if, once migrated, every table,
//! index, trigger and view in it is one the migrations make, with the same
//! SQL, and none of theirs is missing — so a copy that lost an append-only
//! trigger or a CHECK constraint, or gained an object, is refused.

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

/// Every object but SQLite's internal ones (`sqlite_…`: statistics and
/// sequences SQLite makes as it likes), ordered.
const SCHEMA: &str = "SELECT type, name, tbl_name, sql FROM sqlite_schema \
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name";

impl Store {
    /// This store's schema.
    pub async fn schema(&self) -> Result<Vec<SchemaObject>, StoreError> {
        Ok(sqlx::query_as(SCHEMA).fetch_all(&self.pool).await?)
    }
}

/// The schema a new store gets from this occcd's migrations (an in-memory
/// database, migrated and dropped).
pub async fn migrated_schema() -> Result<Vec<SchemaObject>, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    MIGRATOR.run(&pool).await?;
    let schema = sqlx::query_as(SCHEMA).fetch_all(&pool).await;
    pool.close().await;
    Ok(schema?)
}

/// The first way `found` differs from `expected`, in words; `None` when
/// they are the same.
#[must_use]
pub fn first_difference(found: &[SchemaObject], expected: &[SchemaObject]) -> Option<String> {
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
        assert_eq!(first_difference(&ours, &ours), None);
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
    }

    #[tokio::test]
    async fn a_new_store_has_the_migrated_schema_and_its_append_only_triggers() {
        let expected = migrated_schema().await.unwrap();
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
        store.close().await;
        assert_eq!(first_difference(&found, &expected), None);
    }
}
