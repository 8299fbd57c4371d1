//! Issue #15: `occcd backup FILE` while the daemon runs, and `occcd restore
//! FILE` while it is stopped — verified before anything is replaced, the
//! replaced store kept, the audit chain continued with an entry saying so.

use occc_tests::{
    DevDir, RunningDaemon,
    people::signed_in_super_admin,
    receivers::{WebhookReceiver, await_received},
};

use crate::support::{audit_rows_of_kind, create_viewer};

async fn usernames(dir: &DevDir) -> Vec<String> {
    let (store, _) = dir.open_store().await;
    let names: Vec<(String,)> = sqlx::query_as("SELECT username FROM users ORDER BY username")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    store.close().await;
    names.into_iter().map(|(n,)| n).collect()
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_verified_and_the_chain_says_so() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let admin = signed_in_super_admin(&dir, &daemon).await;
    create_viewer(&admin.session, "alice").await.unwrap();

    // Online: the daemon keeps serving while the copy is taken.
    let backup = dir.path().join("occcd-backup.tar");
    let (status, output) = dir.run_occcd(&["backup", backup.to_str().unwrap()]).await;
    assert!(status.success(), "{output}");
    assert!(output.contains("backup written"), "{output}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // Encrypted: no username, no audit text in the clear.
    let bytes = std::fs::read(&backup).unwrap();
    for clear in [&b"alice"[..], b"login_succeeded", b"SQLite format 3"] {
        assert!(
            !crate::support::contains_bytes(&bytes, clear),
            "{}",
            String::from_utf8_lossy(clear)
        );
    }
    // Never over an existing file.
    let (status, output) = dir.run_occcd(&["backup", backup.to_str().unwrap()]).await;
    assert!(
        !status.success() && output.contains("never overwrites"),
        "{output}"
    );
    create_viewer(&admin.session, "bob").await.unwrap();

    // Not beside a running daemon.
    let (status, output) = dir.run_occcd(&["restore", backup.to_str().unwrap()]).await;
    assert!(!status.success(), "{output}");
    assert!(output.contains("stop occcd first"), "{output}");
    assert!(daemon.terminate().await.success());

    // A damaged copy is refused and nothing is replaced.
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let damaged = dir.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let (status, output) = dir.run_occcd(&["restore", damaged.to_str().unwrap()]).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("nothing was replaced") && output.contains("checksum"),
        "{output}"
    );
    assert!(
        usernames(&dir).await.contains(&"bob".to_owned()),
        "unchanged"
    );

    // The real one drops what came after it (bob): only when asked to.
    let (status, output) = dir.run_occcd(&["restore", backup.to_str().unwrap()]).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("--accept-loss") && output.contains("drops entries"),
        "{output}"
    );
    assert!(
        usernames(&dir).await.contains(&"bob".to_owned()),
        "unchanged"
    );
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", backup.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");
    assert!(
        output.contains("store_restored") && output.contains("kept as"),
        "{output}"
    );
    let names = usernames(&dir).await;
    assert!(
        names.contains(&"alice".to_owned()) && !names.contains(&"bob".to_owned()),
        "{names:?}"
    );
    let kept: Vec<_> = std::fs::read_dir(dir.database().parent().unwrap())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("occcd.db.replaced-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the replaced store is kept");

    // The chain continues, intact, with the restore in it.
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
    let (store, _) = dir.open_store().await;
    let restored = audit_rows_of_kind(&store, "store_restored").await;
    store.close().await;
    assert_eq!(restored.len(), 1);
    assert!(
        restored[0].2.contains("replaced_audit_head"),
        "{:?}",
        restored[0]
    );
    // And the daemon serves from it; its events say it is another life of
    // the store (ids after the backup's are used again).
    let secret_file = dir.path().join("webhook.secret");
    let receiver = WebhookReceiver::start(&"r".repeat(40), &secret_file);
    dir.set_config(&format!(
        "[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        receiver.url,
        secret_file.display().to_string()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    assert!(daemon.client().await.daemon_info().await.is_ok());
    let received = await_received(
        || receiver.received(),
        |text| text.contains("\"event\":\"daemon_started\""),
        "no events after the restore",
    )
    .await;
    assert!(!received.contains("\"store\":\"0\""), "{received}");
    assert!(received.contains("\"store\":\""), "{received}");
}

#[tokio::test]
async fn a_backup_file_with_anything_but_two_plain_files_is_refused() {
    let dir = DevDir::new();
    drop(RunningDaemon::start(&dir).await);
    let crafted = dir.path().join("crafted.tar");
    let mut archive = tar::Builder::new(std::fs::File::create(&crafted).unwrap());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    archive
        .append_link(&mut header, "manifest.json", "/etc/shadow")
        .unwrap();
    archive.finish().unwrap();
    drop(archive);
    let (status, output) = dir.run_occcd(&["restore", crafted.to_str().unwrap()]).await;
    assert!(!status.success(), "{output}");
    assert!(output.contains("not a plain file"), "{output}");
}

#[tokio::test]
async fn a_backup_of_another_installation_is_refused() {
    let theirs = DevDir::new();
    let daemon = RunningDaemon::start(&theirs).await;
    let _admin = signed_in_super_admin(&theirs, &daemon).await;
    let backup = theirs.path().join("theirs.tar");
    let (status, output) = theirs
        .run_occcd(&["backup", backup.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");
    drop(daemon);

    let ours = DevDir::new();
    drop(RunningDaemon::start(&ours).await);
    let (status, output) = ours.run_occcd(&["restore", backup.to_str().unwrap()]).await;
    assert!(!status.success(), "{output}");
    assert!(output.contains("another master key"), "{output}");
    // Not a backup at all.
    let junk = ours.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let (status, output) = ours.run_occcd(&["restore", junk.to_str().unwrap()]).await;
    assert!(
        !status.success() && output.contains("not an occcd backup"),
        "{output}"
    );
}

/// A backup, taken by the daemon, of its store after `statements` ran on
/// it behind the daemon's back; the daemon stopped, the store's bytes then.
async fn backup_of_a_store_edited_with(
    dir: &DevDir,
    statements: &[&'static str],
) -> (std::path::PathBuf, Vec<u8>) {
    let daemon = RunningDaemon::start(dir).await;
    let admin = signed_in_super_admin(dir, &daemon).await;
    create_viewer(&admin.session, "alice").await.unwrap();
    assert!(daemon.terminate().await.success());
    let (store, _) = dir.open_store().await;
    for &statement in statements {
        sqlx::query(statement)
            .execute(store.raw_pool())
            .await
            .unwrap();
    }
    store.close().await;
    let daemon = RunningDaemon::start(dir).await;
    let backup = dir.path().join("edited-backup.tar");
    let (status, output) = dir.run_occcd(&["backup", backup.to_str().unwrap()]).await;
    assert!(status.success(), "{output}");
    assert!(daemon.terminate().await.success());
    (backup, std::fs::read(dir.database()).unwrap())
}

/// A backup whose checksum and signature hold but whose database does not
/// verify — taken of a store edited behind the daemon's back — is refused
/// by the restore's own checks of what is inside, and nothing is replaced.
#[tokio::test]
async fn a_signed_backup_whose_audit_chain_is_broken_is_refused_and_nothing_is_replaced() {
    let dir = DevDir::new();
    let (backup, before) = backup_of_a_store_edited_with(
        &dir,
        &[
            "DROP TRIGGER audit_log_no_update",
            "UPDATE audit_log SET detail = '{}' WHERE sequence = 2",
        ],
    )
    .await;
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", backup.to_str().unwrap()])
        .await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("the audit chain is broken at entry 2")
            && output.contains("nothing was replaced"),
        "{output}"
    );
    assert_eq!(std::fs::read(dir.database()).unwrap(), before, "unchanged");
}

/// The chain intact but an append-only trigger gone: the copy's schema is
/// not the one occcd's migrations make, so it is refused.
#[tokio::test]
async fn a_signed_backup_of_a_store_that_lost_a_trigger_is_refused_and_nothing_is_replaced() {
    let dir = DevDir::new();
    let (backup, before) =
        backup_of_a_store_edited_with(&dir, &["DROP TRIGGER audit_checkpoints_no_delete"]).await;
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", backup.to_str().unwrap()])
        .await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains(
            "the database's schema is not occcd's (before migrating it): \
             trigger audit_checkpoints_no_delete is missing"
        ) && output.contains("nothing was replaced"),
        "{output}"
    );
    assert_eq!(std::fs::read(dir.database()).unwrap(), before, "unchanged");
}
