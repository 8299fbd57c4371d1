//! Issue #15: a backup over the socket, for an elevated super-admin —
//! audited, one at a time, written by `occcctl backup FILE` only when all of
//! it arrived, and restorable with `occcd restore`.

use std::process::Stdio;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{invite, log_in, signed_in_super_admin},
};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::audit_rows_of_kind;

fn denial(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("occc-denial")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `occcctl backup FILE` with `token`: success and output.
async fn occcctl_backup(dir: &DevDir, token: &str, file: &std::path::Path) -> (bool, String) {
    let ran = crate::auth::occcctl::occcctl(dir, &["backup", file.to_str().unwrap()])
        .env("OCCC_SESSION_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    (ran.status.success(), text)
}

#[tokio::test]
async fn an_elevated_super_admin_takes_a_backup_over_the_socket_that_restores() {
    let dir = DevDir::new();
    // Large enough that a backup is still being read while the test asks
    // for a second one.
    super::rekey::sealed_snapshot(&dir, 8 * 1024 * 1024).await;
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let mut ada = invite(&root.session, &root.anonymous, "ada", pb::UserRole::Admin).await;
    let ada_session = log_in(&root.anonymous, &mut ada).await;
    occc_tests::people::elevate(&ada_session, &mut ada).await;

    // An admin may not, elevated or not; a super-admin must be elevated.
    let refused = ada_session
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), denial(&refused).as_str()),
        (Code::PermissionDenied, "forbidden")
    );
    let mut again = root.person.clone();
    let unelevated = log_in(&root.anonymous, &mut again).await;
    let refused = unelevated
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(denial(&refused), "elevation-required");

    // One at a time: a second while the first is being read is refused;
    // once the first reader is gone, the slot is free again.
    let mut first = root
        .session
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        first.next().await.unwrap().unwrap().part,
        Some(pb::backup_part::Part::Data(_))
    ));
    let busy = root
        .session
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::ResourceExhausted, "{busy:?}");
    drop(first);

    // occcctl writes the file (0600) once size and checksum match.
    let token = root.session.session().unwrap().expose().to_owned();
    let file = dir.path().join("over-the-socket.tar");
    let mut output = None;
    for _ in 0..50 {
        let (ok, text) = occcctl_backup(&dir, &token, &file).await;
        if ok || !text.contains("being made already") {
            output = Some((ok, text));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (ok, text) = output.expect("the slot was freed");
    assert!(ok, "{text}");
    assert!(text.contains("backup written"), "{text}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let bytes = std::fs::read(&file).unwrap();
    assert!(!crate::support::contains_bytes(&bytes, b"SQLite format 3"));
    // The snapshot's bytes (0, 1, 2, … in the clear) are not in it either.
    let clear: Vec<u8> = (0..64).collect();
    assert!(!crate::support::contains_bytes(&bytes, &clear));
    // Never over a file.
    let (ok, text) = occcctl_backup(&dir, &token, &file).await;
    assert!(!ok, "{text}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the file is untouched"
    );
    // Nothing spooled is left in the state folder.
    let spooled: Vec<_> = std::fs::read_dir(dir.database().parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".occcd-spool") || name.starts_with(".occcd-backup"))
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");

    // Audited with who took it; the file restores on the host.
    assert!(daemon.terminate().await.success());
    let (store, _) = dir.open_store().await;
    let taken = audit_rows_of_kind(&store, "store_backed_up").await;
    let actors: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT actor_user FROM audit_log WHERE kind = 'store_backed_up'")
            .fetch_all(store.raw_pool())
            .await
            .unwrap();
    store.close().await;
    assert_eq!(taken.len(), 2, "the abandoned backup and the written one");
    assert!(
        actors
            .iter()
            .all(|(actor,)| actor.as_deref() == Some("root")),
        "{actors:?}"
    );
    let (status, output) = dir
        .run_occcd(&["restore", "--accept-loss", file.to_str().unwrap()])
        .await;
    assert!(status.success(), "{output}");
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
}

#[tokio::test]
async fn a_backup_without_room_beside_the_store_is_refused_with_what_it_needs() {
    let test = "a_backup_without_room_beside_the_store_is_refused_with_what_it_needs";
    let dir = DevDir::new();
    // The state folder on a disk with room for the store, not for a backup.
    let Some(_disk) =
        occc_tests::small_disk::SmallDisk::mount(dir.database().parent().unwrap(), "16m")
    else {
        return occc_tests::skip::unavailable(test, "root, to mount a small tmpfs");
    };
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let refused = root
        .session
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("MiB free"),
        "{}",
        refused.message()
    );
    // Nothing was written, and the daemon goes on.
    let (store, _) = dir.open_store().await;
    assert!(
        audit_rows_of_kind(&store, "store_backed_up")
            .await
            .is_empty()
    );
    store.close().await;
    assert!(daemon.terminate().await.success());
}

/// A backup's stream is bound to its session: logged out after the first
/// part, the caller gets UNAUTHENTICATED, never the whole file (a store of
/// 60,000 entries, far more than HTTP/2 holds in flight).
#[tokio::test]
async fn a_backup_stream_ends_with_its_session() {
    use occc_tests::generated_audit::{GeneratedAudit, super_admin_over_generated_audit};
    let dir = DevDir::new();
    let mut over = super_admin_over_generated_audit(
        &dir,
        "root",
        GeneratedAudit {
            count: 60_000,
            users: 10,
            rare_every: 1_000,
        },
    )
    .await;
    occc_tests::people::elevate(&over.session, &mut over.person).await;
    let mut parts = over
        .session
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        parts.next().await.unwrap().unwrap().part,
        Some(pb::backup_part::Part::Data(_))
    ));
    over.session
        .auth()
        .logout(pb::LogoutRequest {})
        .await
        .unwrap();
    let mut received = 1;
    let ended = loop {
        match parts.next().await {
            Some(Ok(part)) => {
                assert!(
                    matches!(part.part, Some(pb::backup_part::Part::Data(_))),
                    "the whole backup reached a session that had logged out \
                     (after {received} parts)"
                );
                received += 1;
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a refusal after {received} parts"),
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    println!("backup stream cut after {received} parts of 64 KiB");
}
