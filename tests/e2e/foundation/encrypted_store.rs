//! The store on disk: encrypted, keyed correctly or not opened at all.

use std::{fs, os::unix::fs::PermissionsExt};

use occc_tests::{DevDir, RunningDaemon, sha256_file};
use tonic::Code;

use crate::support::{call_raw, contains_bytes};

#[tokio::test]
async fn database_wal_and_shm_hold_no_plaintext() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let planted = [
        "PlantedMarkerQ7Z1",
        "PlantedMarkerX9K4",
        "PlantedMarkerM3V8",
    ];
    for marker in planted {
        assert_eq!(
            call_raw(&client, &format!("/occc.v1.{marker}/Probe")).await,
            Code::Unimplemented
        );
    }
    // The values are in the database (read through the key) …
    let (store, _) = dir.open_store().await;
    let details: Vec<(String,)> = sqlx::query_as("SELECT detail FROM audit_log")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    for marker in planted {
        assert!(
            details.iter().any(|(d,)| d.contains(marker)),
            "{marker} not stored"
        );
    }
    // … but not in the bytes on disk, while the daemon runs (WAL in use).
    let files = ["occcd.db", "occcd.db-wal", "occcd.db-shm"]
        .map(|name| dir.path().join("state").join(name));
    for file in &files {
        let bytes = fs::read(file)
            .unwrap_or_else(|err| panic!("{} (the daemon serves): {err}", file.display()));
        assert!(
            !bytes.is_empty(),
            "{} is empty: the bytes checked would prove nothing",
            file.display()
        );
        for marker in planted {
            assert!(
                !contains_bytes(&bytes, marker.as_bytes()),
                "{marker} in plaintext in {}",
                file.display()
            );
        }
        assert!(
            !contains_bytes(&bytes, b"call_refused"),
            "plaintext column value in {}",
            file.display()
        );
    }
    let header = fs::read(&files[0]).unwrap();
    assert!(
        !header.starts_with(b"SQLite format 3"),
        "database header is plaintext"
    );
}

/// A daemon killed with SIGKILL after writing leaves a WAL behind; a process
/// with the wrong key must not checkpoint it into the database either.
async fn killed_daemon_with_wal(dir: &DevDir) {
    let daemon = RunningDaemon::start(dir).await;
    let client = daemon.client().await;
    for _ in 0..20 {
        assert_eq!(
            call_raw(&client, "/occc.v1.Audit/VerifyChain").await,
            Code::Unauthenticated
        );
    }
    daemon.kill_hard();
    let wal = dir.path().join("state").join("occcd.db-wal");
    assert!(
        fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "SIGKILL leaves a WAL with frames"
    );
}

#[tokio::test]
async fn wrong_key_exits_nonzero_and_leaves_database_untouched() {
    let dir = DevDir::new();
    killed_daemon_with_wal(&dir).await;
    let before = sha256_file(&dir.database());
    fs::write(dir.key_file(), format!("{}\n", "5a".repeat(32))).unwrap();
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(!status.success());
    assert!(output.contains("does not decrypt"), "{output}");
    assert!(
        output.contains(&dir.key_file().display().to_string()),
        "message names the key source: {output}"
    );
    assert_eq!(sha256_file(&dir.database()), before);
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert_eq!(status.code(), Some(2), "{output}");
    assert_eq!(sha256_file(&dir.database()), before);
}

#[tokio::test]
async fn missing_key_names_every_source_and_creates_no_new_key() {
    let dir = DevDir::new();
    killed_daemon_with_wal(&dir).await;
    let before = sha256_file(&dir.database());
    fs::remove_file(dir.key_file()).unwrap();
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(!status.success());
    assert!(
        output.contains("CREDENTIALS_DIRECTORY") && output.contains("master.key"),
        "{output}"
    );
    assert!(
        !dir.key_file().exists(),
        "a fresh key must never be paired with an existing database"
    );
    assert_eq!(sha256_file(&dir.database()), before);
}

#[tokio::test]
async fn key_file_readable_by_others_is_refused() {
    let dir = DevDir::new();
    RunningDaemon::start(&dir).await.terminate().await;
    fs::set_permissions(dir.key_file(), fs::Permissions::from_mode(0o644)).unwrap();
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(!status.success());
    assert!(
        output.contains("0644") && output.contains("chmod 600"),
        "{output}"
    );
    assert!(
        !dir.socket().exists(),
        "a daemon that failed to start leaves no socket"
    );
}
