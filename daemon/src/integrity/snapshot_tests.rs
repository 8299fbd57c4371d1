use zeroize::Zeroizing;

use super::*;
use crate::{
    clock::UnixMillis,
    crypto::{KeyPurpose, KeyRing},
    integrity::snapshot_writer::CHUNK_BYTES,
    store::open_for_test,
};

const ID: &str = "snap_000000000000000000000000";

/// A vault over a new store, with one snapshot: `small.txt` (one chunk)
/// and `large.bin` (three chunks).
async fn vault_with_a_snapshot(folder: &std::path::Path) -> Arc<SnapshotVault> {
    let store = open_for_test(folder).await;
    let keys = KeyRing::from_bytes(Zeroizing::new([3; 32]));
    let sealer = Arc::new(Sealer::new(&keys.derive(KeyPurpose::Sealing)).unwrap());
    let vault = Arc::new(SnapshotVault::new(
        store,
        sealer,
        &keys.derive(KeyPurpose::Snapshots),
        64 << 20,
    ));
    let mut writer = vault
        .begin(ID, "openclaw", "test", UnixMillis(1))
        .await
        .unwrap();
    for (name, bytes) in [
        ("small.txt", b"evidence".to_vec()),
        ("large.bin", vec![7u8; 2 * CHUNK_BYTES + 10]),
    ] {
        writer
            .add(Artifact {
                name: name.to_owned(),
                source: "test".to_owned(),
                captured_at: UnixMillis(1),
                bytes,
            })
            .await
            .unwrap();
    }
    writer.finish().await.unwrap();
    vault
}

async fn run(vault: &SnapshotVault, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(vault.store().raw_pool())
        .await
        .unwrap();
}

/// Whoever can write the database can change the evidence, not hide it:
/// a chunk altered, two chunks swapped, a chunk removed and an artifact
/// added are each named by verification, and an edited manifest is not
/// authentic.
#[tokio::test]
async fn altered_evidence_is_named_and_an_edited_manifest_is_not_authentic() {
    let folder = tempfile::tempdir().unwrap();
    let vault = vault_with_a_snapshot(folder.path()).await;
    let verified = vault.verify(ID).await.unwrap();
    assert!(verified.ok(), "{verified:?}");

    // One byte of the sealed chunk changed.
    run(
        &vault,
        "UPDATE snapshot_chunks SET sealed = CAST(\
         substr(sealed, 1, 20) || X'FF' || substr(sealed, 22) AS BLOB) WHERE name = 'small.txt'",
    )
    .await;
    let verified = vault.verify(ID).await.unwrap();
    assert_eq!(verified.mismatched, ["small.txt"]);
    assert!(verified.manifest_authentic && !verified.ok());

    let folder = tempfile::tempdir().unwrap();
    let vault = vault_with_a_snapshot(folder.path()).await;
    // Chunks are bound to their position: swapped, they do not open.
    for (from, to) in [(0, 100), (1, 0), (100, 1)] {
        run(
            &vault,
            &format!(
                "UPDATE snapshot_chunks SET seq = {to} WHERE name = 'large.bin' AND seq = {from}"
            ),
        )
        .await;
    }
    assert_eq!(vault.verify(ID).await.unwrap().mismatched, ["large.bin"]);

    let folder = tempfile::tempdir().unwrap();
    let vault = vault_with_a_snapshot(folder.path()).await;
    // The last chunk removed: what is left opens, but is short.
    run(
        &vault,
        "DELETE FROM snapshot_chunks WHERE name = 'large.bin' AND seq = 2",
    )
    .await;
    assert_eq!(vault.verify(ID).await.unwrap().mismatched, ["large.bin"]);
    // An artifact the manifest does not list.
    run(
        &vault,
        &format!(
            "INSERT INTO snapshot_chunks (snapshot_id, name, seq, sealed) \
             VALUES ('{ID}', 'planted.sh', 0, X'00')"
        ),
    )
    .await;
    assert_eq!(
        vault.verify(ID).await.unwrap().mismatched,
        ["large.bin", "planted.sh"]
    );
    // The manifest edited to match: no longer authentic.
    run(
        &vault,
        "UPDATE snapshots SET manifest = replace(manifest, '\"test\"', '\"routine\"')",
    )
    .await;
    let verified = vault.verify(ID).await.unwrap();
    assert!(!verified.manifest_authentic, "{verified:?}");
    assert!(!verified.ok());
}
