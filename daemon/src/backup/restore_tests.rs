//! The restore's checks of what a backup holds, one by one: each on a real
//! SQLCipher copy with a real audit chain and signed checkpoints, changed
//! in one way only (a backup reaching these checks has a manifest whose
//! signature and checksum held — `occcd restore` end to end is in the
//! e2e suite).

use std::{sync::Arc, time::Duration};

use zeroize::Zeroizing;

use super::*;
use crate::clock::{ManualClock, UnixMillis};

struct Copy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    keys: Keys,
    manifest: Manifest,
}

/// A copy with three audit entries, each followed by a signed checkpoint,
/// and the manifest a backup of it would carry.
async fn copy_with_three_entries() -> Copy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.db");
    let ring = KeyRing::from_bytes(Zeroizing::new([7; 32]));
    let (hasher, signer) = CheckpointSigner::of_keys(&ring).unwrap();
    let keys = Keys {
        database: ring.derive(KeyPurpose::Database),
        hasher,
        signer,
    };
    let store = Store::open(&path, &keys.database, true).await.unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    for last in 0..3 {
        clock.advance(Duration::from_secs(1));
        let entry = AuditEvent::EventsSkipped {
            output: "webhook".to_owned(),
            first: 1,
            last,
        };
        append_offline(&store, &keys.hasher, &keys.signer, clock.clone(), entry)
            .await
            .unwrap();
    }
    store.close().await;
    let manifest = Manifest {
        format: super::super::manifest::FORMAT.to_owned(),
        occcd_version: String::new(),
        created_at_unix_ms: 0,
        audit_head: 3,
        database_bytes: 0,
        database_sha256: String::new(),
        data_root_wrapped_hex: None,
        public_key_hex: String::new(),
        signature_hex: String::new(),
    };
    Copy {
        _dir: dir,
        path,
        keys,
        manifest,
    }
}

impl Copy {
    /// Runs `statements` on one connection of the copy, opened for writing.
    async fn edit(&self, statements: &[&'static str]) {
        let store = Store::open(&self.path, &self.keys.database, false)
            .await
            .unwrap();
        let mut connection = store.raw_pool().acquire().await.unwrap();
        for &statement in statements {
            sqlx::query(statement)
                .execute(&mut *connection)
                .await
                .unwrap();
        }
        drop(connection);
        store.close().await;
    }

    /// What the restore's checks say of the copy under `manifest`.
    async fn checked(&self, manifest: &Manifest) -> Result<(), String> {
        let copy = Store::open_copy_to_check(&self.path, &self.keys.database)
            .await
            .map_err(|err| format!("does not open: {err}"))?;
        let checked = check_copy(&copy, &self.keys, manifest).await;
        copy.close().await;
        checked.map_err(|err| err.to_string())
    }
}

#[tokio::test]
async fn an_intact_copy_passes_and_a_head_or_root_the_manifest_misnames_is_refused() {
    let copy = copy_with_three_entries().await;
    assert_eq!(copy.checked(&copy.manifest).await, Ok(()));
    for head in [2, 4] {
        let manifest = Manifest {
            audit_head: head,
            ..copy.manifest.clone()
        };
        let refused = copy.checked(&manifest).await.unwrap_err();
        assert!(
            refused.contains(&format!(
                "the audit log ends at entry 3, the manifest says {head}"
            )),
            "{refused}"
        );
    }
    let manifest = Manifest {
        data_root_wrapped_hex: Some("00".repeat(60)),
        ..copy.manifest.clone()
    };
    let refused = copy.checked(&manifest).await.unwrap_err();
    assert!(refused.contains("wrapped data root"), "{refused}");
}

#[tokio::test]
async fn a_rewritten_checkpoint_is_refused_by_its_signature() {
    let copy = copy_with_three_entries().await;
    copy.edit(&[
        "DROP TRIGGER audit_checkpoints_no_update",
        "UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE sequence = 2",
    ])
    .await;
    let refused = copy.checked(&copy.manifest).await.unwrap_err();
    assert!(refused.contains("audit checkpoint at entry 2"), "{refused}");
}

#[tokio::test]
async fn a_row_breaking_its_tables_constraints_fails_the_integrity_check() {
    let copy = copy_with_three_entries().await;
    // The chain and checkpoints are untouched; only a constraint SQLite
    // would never let through is broken.
    copy.edit(&[
        "PRAGMA ignore_check_constraints = ON",
        "INSERT INTO audit_checkpoints (sequence, at_unix_ms, link, signature) \
         VALUES (-1, 0, zeroblob(31), zeroblob(64))",
    ])
    .await;
    let refused = copy.checked(&copy.manifest).await.unwrap_err();
    assert!(
        refused.contains("integrity check") && refused.contains("CHECK constraint"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_page_changed_on_disk_is_refused_by_its_authentication_code() {
    let copy = copy_with_three_entries().await;
    let mut bytes = std::fs::read(&copy.path).unwrap();
    let page = 4096;
    assert!(bytes.len() >= 2 * page, "{} bytes", bytes.len());
    // A byte inside the last page (not the first: its header opens the file).
    let at = bytes.len() - page / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&copy.path, &bytes).unwrap();
    let refused = copy.checked(&copy.manifest).await.unwrap_err();
    assert!(
        refused.contains("integrity check: HMAC verification failed for page"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_copy_that_lost_a_trigger_or_gained_an_object_is_not_occcds_schema() {
    let copy = copy_with_three_entries().await;
    let checked = || Store::open_copy_to_check(&copy.path, &copy.keys.database);
    let opened = || Store::open(&copy.path, &copy.keys.database, false);
    // Both checks, before migrating (on the check connection) and after.
    let differences = || async {
        let check = checked().await.unwrap();
        let before = unmigrated_schema_difference(&check).await.unwrap();
        check.close().await;
        let store = opened().await.unwrap();
        let after = schema_difference(&store).await.unwrap();
        store.close().await;
        (before, after)
    };
    assert_eq!(differences().await, (None, None));
    copy.edit(&["DROP TRIGGER audit_checkpoints_no_delete"])
        .await;
    let missing = Some("trigger audit_checkpoints_no_delete is missing".to_owned());
    assert_eq!(differences().await, (missing.clone(), missing));
    copy.edit(&[
        "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints\n\
         BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END",
        "CREATE VIEW everything AS SELECT * FROM audit_log",
    ])
    .await;
    let extra = Some("view everything is not occcd's".to_owned());
    assert_eq!(differences().await, (extra.clone(), extra));
}

/// SQLite refuses to create an object named `sqlite_…`, but loads one
/// written into the schema table — a trigger hidden under such a name
/// still fires. It is not occcd's, whatever it is called.
#[tokio::test]
async fn an_object_hidden_under_a_name_sqlite_keeps_for_itself_is_refused() {
    let copy = copy_with_three_entries().await;
    copy.edit(&[
        "PRAGMA writable_schema = ON",
        "INSERT INTO sqlite_schema (type, name, tbl_name, rootpage, sql) VALUES \
         ('trigger', 'SQLITE_hidden', 'audit_log', 0, \
          'CREATE TRIGGER SQLITE_hidden AFTER INSERT ON audit_log BEGIN SELECT 1; END')",
    ])
    .await;
    let check = Store::open_copy_to_check(&copy.path, &copy.keys.database)
        .await
        .unwrap();
    let hidden: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'SQLITE_hidden'")
            .fetch_one(check.raw_pool())
            .await
            .unwrap();
    assert_eq!(hidden, 1, "planted");
    let before = unmigrated_schema_difference(&check).await.unwrap();
    check.close().await;
    assert_eq!(
        before.as_deref(),
        Some("trigger SQLITE_hidden is not occcd's")
    );
}
