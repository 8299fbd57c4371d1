//! Issue #15: `occcd rekey` puts the store under a new master key — the
//! database re-encrypted, every sealed value re-sealed, audited — and a
//! kill -9 at any instant leaves a store that opens with the old key or the
//! new one; a rerun says which and finishes.

use std::{path::Path, sync::Arc};

use occc_client::proto as pb;
use occc_tests::{DevDir, RunningDaemon, people::log_in, workspace_binary};
use occcd::{
    clock::UnixMillis,
    crypto::{KeyPurpose, KeyRing, Sealer},
    integrity::snapshot::{Artifact, SnapshotVault},
    lifecycle::open_store,
    store::Store,
};
use zeroize::Zeroizing;

use crate::{
    config::{SAMPLE, SAMPLE_SECRETS, config, write},
    support::audit_rows_of_kind,
};

fn key_bytes(path: &Path) -> Zeroizing<[u8; 32]> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut key = Zeroizing::new([0; 32]);
    hex::decode_to_slice(text.trim(), key.as_mut_slice()).unwrap();
    key
}

/// Whether the key in `key_file` opens the store (read-only).
async fn opens_with(database: &Path, key_file: &Path) -> bool {
    let database_key = KeyRing::from_bytes(key_bytes(key_file)).derive(KeyPurpose::Database);
    match Store::open_to_check(database, &database_key).await {
        Ok(store) => {
            store.close().await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_rotated_store_opens_only_with_the_new_key_and_keeps_logins_sessions_versions_and_audit()
{
    let (dir, _path, daemon, root) = crate::config::editing(SAMPLE).await;
    let mut ada =
        occc_tests::people::invite(&root.session, &root.anonymous, "ada", pb::UserRole::Admin)
            .await;
    let version = crate::config::read(&root.session).await.version.clone();
    let edited = SAMPLE.replace(
        "// never beyond this machine",
        "// edited before the rotation",
    );
    write(&root.session, &version, &edited, "before rotation")
        .await
        .unwrap();
    let (_, pubkey_before) = dir.run_occcd(&["audit", "pubkey"]).await;
    let old_key = dir.path().join("old.key");
    std::fs::copy(dir.key_file(), &old_key).unwrap();
    let backup_before = dir.path().join("before.tar");
    let (status, output) = dir
        .run_occcd(&["backup", backup_before.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");

    // Not beside a running daemon.
    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(
        !status.success() && output.contains("stop occcd first"),
        "{output}"
    );
    assert!(daemon.terminate().await.success());

    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(status.success(), "{output}");
    assert!(output.contains("now opens with the new key"), "{output}");
    assert!(!Path::new(&format!("{}.next", dir.key_file().display())).exists());
    assert!(
        !opens_with(&dir.database(), &old_key).await,
        "the old key no longer opens it"
    );
    assert!(opens_with(&dir.database(), &dir.key_file()).await);
    let database = std::fs::read(dir.database()).unwrap();
    assert!(!crate::support::contains_bytes(
        &database,
        b"SQLite format 3"
    ));

    // The audit chain verifies and its public key is the same (pinned
    // verifiers keep working); the rotation is in it.
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
    let (_, pubkey_after) = dir.run_occcd(&["audit", "pubkey"]).await;
    assert_eq!(pubkey_before, pubkey_after);
    let (store, _) = dir.open_store().await;
    let rotated = audit_rows_of_kind(&store, "master_key_rotated").await;
    store.close().await;
    assert_eq!(rotated.len(), 1);
    // Two TOTP secrets and two config versions.
    assert!(
        rotated[0].2.contains("\"resealed_values\":4"),
        "{rotated:?}"
    );

    // The daemon serves on the new key: the session from before still
    // works (token HMACs outlive the rotation), TOTP secrets and config
    // versions open (re-sealed).
    let daemon = RunningDaemon::start(&dir).await;
    let token = root.session.session().unwrap().clone();
    let session = daemon.client().await.with_session(token);
    session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("the session outlived the rotation");
    let client = daemon.client().await;
    let ada_session = log_in(&client, &mut ada).await;
    occc_tests::people::elevate(&ada_session, &mut ada).await;
    for number in [1, 2] {
        let text = config(&ada_session)
            .get_config_version(pb::ConfigVersionRef {
                container: String::new(),
                number,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!text.redacted);
        assert!(text.text.contains(SAMPLE_SECRETS[0]), "version {number}");
    }

    // A backup made before opens only with the old key; one made after
    // restores.
    assert!(daemon.terminate().await.success());
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", backup_before.to_str().unwrap()])
        .await;
    assert!(
        !status.success() && output.contains("another master key"),
        "{output}"
    );
    let backup_after = dir.path().join("after.tar");
    let (status, output) = dir
        .run_occcd(&["backup", backup_after.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", backup_after.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
}

/// Writes a snapshot of `bytes` through the vault (sealed chunks) and
/// returns its id.
pub(super) async fn sealed_snapshot(dir: &DevDir, bytes: usize) -> String {
    let unlocked = open_store(&dir.config()).await.unwrap();
    let vault = vault_of(&unlocked.store, &unlocked.keys);
    let id = occcd::integrity::snapshot::new_snapshot_id().unwrap();
    let mut writer = vault
        .begin(&id, "openclaw", "rekey test", UnixMillis(1))
        .await
        .unwrap();
    writer
        .add(Artifact {
            name: "bulk.bin".into(),
            source: "test".into(),
            captured_at: UnixMillis(1),
            bytes: (0..bytes).map(|i| (i % 251) as u8).collect(),
        })
        .await
        .unwrap();
    writer.finish().await.unwrap();
    unlocked.store.close().await;
    id
}

fn vault_of(store: &Store, keys: &KeyRing) -> Arc<SnapshotVault> {
    Arc::new(SnapshotVault::new(
        store.clone(),
        Arc::new(Sealer::new(&keys.derive(KeyPurpose::Sealing)).unwrap()),
        &keys.derive(KeyPurpose::Snapshots),
        u64::MAX,
    ))
}

/// The snapshot verifies (every chunk opens, checksums match) under the
/// keys the store opens with now.
async fn snapshot_verifies(dir: &DevDir, id: &str) -> bool {
    let unlocked = open_store(&dir.config()).await.unwrap();
    let verified = vault_of(&unlocked.store, &unlocked.keys)
        .verify(id)
        .await
        .unwrap();
    unlocked.store.close().await;
    verified.ok()
}

#[tokio::test]
async fn kill_9_at_any_instant_of_a_rotation_leaves_one_key_that_opens_and_a_rerun_finishes() {
    let trials: u32 = std::env::var("OCCC_REKEY_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let admin = occc_tests::people::signed_in_super_admin(&dir, &daemon).await;
    drop(admin);
    assert!(daemon.terminate().await.success());
    let snapshot = sealed_snapshot(&dir, 24 * 1024 * 1024).await;
    let next = std::path::PathBuf::from(format!("{}.next", dir.key_file().display()));

    // How long one rotation takes here: kills are spread over it.
    let started = std::time::Instant::now();
    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(status.success(), "{output}");
    let span = started.elapsed();

    let (mut before_swap, mut between, mut finished, mut refused_start) = (0, 0, 0, false);
    for trial in 0..trials {
        let old_key = dir.path().join("old.key");
        std::fs::copy(dir.key_file(), &old_key).unwrap();
        let mut child = std::process::Command::new(workspace_binary("occcd"))
            .args(dir.occcd_args(&["rekey"]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread over the whole run and beyond it.
        tokio::time::sleep(span.mul_f64(f64::from(trial) * 1.5 / f64::from(trials))).await;
        let _ = child.kill();
        let _ = child.wait();

        // Exactly one key opens the store: the old one or the new one.
        let old_opens = opens_with(&dir.database(), &old_key).await;
        let new_opens = next.exists() && opens_with(&dir.database(), &next).await;
        let key_file_changed = key_bytes(&dir.key_file()) != key_bytes(&old_key);
        assert!(
            old_opens ^ (new_opens || key_file_changed),
            "trial {trial}: old opens {old_opens}, new opens {new_opens}"
        );
        if new_opens {
            between += 1;
        } else if old_opens {
            before_swap += 1;
        } else {
            finished += 1;
        }
        // While unfinished the daemon refuses to start, and says how to go on.
        if next.exists() && !refused_start {
            let (status, output) = dir.run_occcd(&["serve"]).await;
            assert!(!status.success(), "{output}");
            assert!(
                output.contains("interrupted") && output.contains("run `occcd rekey`"),
                "{output}"
            );
            refused_start = true;
        }
        // A rerun says which key the store opened with and finishes.
        let (status, output) = dir.run_occcd(&["rekey"]).await;
        assert!(status.success(), "trial {trial}: {output}");
        if new_opens {
            assert!(
                output.contains("already opened with the new key"),
                "{output}"
            );
        } else if old_opens {
            assert!(output.contains("opened with the old key"), "{output}");
        }
        assert!(!next.exists());
        assert!(opens_with(&dir.database(), &dir.key_file()).await);
        let leftovers: Vec<_> = std::fs::read_dir(dir.database().parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".rekey"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    // The narrow window between the two renames, made exactly: the store
    // under the new key, the key file still the old one, the new key in
    // `.next`.
    let old_key = dir.path().join("old.key");
    std::fs::copy(dir.key_file(), &old_key).unwrap();
    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(status.success(), "{output}");
    std::fs::copy(dir.key_file(), &next).unwrap();
    std::fs::copy(&old_key, dir.key_file()).unwrap();
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(
        !status.success() && output.contains("interrupted"),
        "{output}"
    );
    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(status.success(), "{output}");
    assert!(
        output.contains("already opened with the new key"),
        "{output}"
    );
    assert!(!next.exists() && opens_with(&dir.database(), &dir.key_file()).await);

    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
    assert!(snapshot_verifies(&dir, &snapshot).await);
    println!(
        "rekey: one run {:.0} ms; {trials} kills: {before_swap} before the swap, \
         {between} between swap and key file, {finished} after",
        span.as_secs_f64() * 1000.0
    );
    // The daemon serves after all of it.
    let daemon = RunningDaemon::start(&dir).await;
    let _ = daemon.client().await;
    assert!(daemon.terminate().await.success());
}

/// `occcd <args>` with the master key handed over as a systemd credential.
async fn run_with_credential(dir: &DevDir, credentials: &Path, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(workspace_binary("occcd"))
        .args(dir.occcd_args(args))
        .env("CREDENTIALS_DIRECTORY", credentials)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn with_the_key_in_a_credential_the_new_key_goes_to_a_named_file_for_the_operator() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let admin = occc_tests::people::signed_in_super_admin(&dir, &daemon).await;
    drop(admin);
    assert!(daemon.terminate().await.success());
    // The key moves into a credential; the key file is gone.
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    let credential = credentials.join("occcd-master-key");
    std::fs::rename(dir.key_file(), &credential).unwrap();

    let (ok, output) = run_with_credential(&dir, &credentials, &["rekey"]).await;
    assert!(!ok && output.contains("--new-key-file"), "{output}");
    let new_key = dir.path().join("new.key");
    let (ok, output) = run_with_credential(
        &dir,
        &credentials,
        &["rekey", "--new-key-file", new_key.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{output}");
    assert!(output.contains("systemd-creds encrypt"), "{output}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&new_key).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(!opens_with(&dir.database(), &credential).await);
    assert!(opens_with(&dir.database(), &new_key).await);
    assert!(
        !dir.key_file().exists(),
        "no key file is made beside a credential"
    );
    // A file occcd did not name for this rotation is never reused.
    let (ok, output) = run_with_credential(
        &dir,
        &credentials,
        &["rekey", "--new-key-file", new_key.to_str().unwrap()],
    )
    .await;
    assert!(!ok && output.contains("name a new file"), "{output}");
    assert!(opens_with(&dir.database(), &new_key).await);
    // Once the credential holds the new key, the tools (and the daemon)
    // open the store with it.
    std::fs::copy(&new_key, &credential).unwrap();
    let (ok, output) = run_with_credential(&dir, &credentials, &["audit", "verify"]).await;
    assert!(ok, "{output}");
}

#[tokio::test]
async fn a_rerun_naming_another_file_is_told_where_the_unfinished_rotations_key_is() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    assert!(daemon.terminate().await.success());
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::rename(dir.key_file(), credentials.join("occcd-master-key")).unwrap();
    // What a run killed after naming its new key leaves.
    let first = dir.path().join("first.key");
    let marker = format!("{}.rekey-target", dir.database().display());
    std::fs::write(&marker, first.to_str().unwrap()).unwrap();
    let other = dir.path().join("other.key");
    let (ok, output) = run_with_credential(
        &dir,
        &credentials,
        &["rekey", "--new-key-file", other.to_str().unwrap()],
    )
    .await;
    assert!(!ok && output.contains(first.to_str().unwrap()), "{output}");
    assert!(!other.exists(), "no key was made");
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(
        !status.success() && output.contains("interrupted"),
        "{output}"
    );
    // The file the marker names finishes it; the marker goes.
    let (ok, output) = run_with_credential(
        &dir,
        &credentials,
        &["rekey", "--new-key-file", first.to_str().unwrap()],
    )
    .await;
    assert!(
        ok && output.contains("now opens with the new key"),
        "{output}"
    );
    assert!(!Path::new(&marker).exists());
    // A file in the state folder is refused.
    let inside = dir.database().parent().unwrap().join("inside.key");
    let (ok, output) = run_with_credential(
        &dir,
        &credentials,
        &["rekey", "--new-key-file", inside.to_str().unwrap()],
    )
    .await;
    assert!(!ok && output.contains("state folder"), "{output}");
}

#[tokio::test]
async fn a_rotation_that_fails_before_the_swap_leaves_the_store_as_it_was_and_the_daemon_starts() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let admin = occc_tests::people::signed_in_super_admin(&dir, &daemon).await;
    drop(admin);
    assert!(daemon.terminate().await.success());
    // A sealed value that no longer opens (damaged, or moved from another
    // row): the rotation cannot re-seal it and must not drop it.
    let (store, _) = dir.open_store().await;
    sqlx::query("UPDATE users SET totp_secret = x'01020304' WHERE username = 'root'")
        .execute(store.raw_pool())
        .await
        .unwrap();
    store.close().await;
    let old_key = std::fs::read(dir.key_file()).unwrap();
    let (status, output) = dir.run_occcd(&["rekey"]).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("does not open") && output.contains("users.totp_secret"),
        "{output}"
    );
    assert_eq!(std::fs::read(dir.key_file()).unwrap(), old_key);
    assert!(!Path::new(&format!("{}.next", dir.key_file().display())).exists());
    assert!(opens_with(&dir.database(), &dir.key_file()).await);
    let daemon = RunningDaemon::start(&dir).await;
    assert!(daemon.terminate().await.success());
}
