//! Issue #16: the store's disk fills while the daemon serves — writes fail
//! with a clear status, reads and sessions go on, nothing acknowledged is
//! lost, and writes work again once there is room.

use std::io::Write;

use occc_client::proto as pb;
use occc_client::proto_health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use occc_tests::{
    DevDir, RunningDaemon, breakable_disk::BreakableDisk, people::signed_in_super_admin, skip,
    small_disk::SmallDisk,
};
use tonic::Code;

use crate::support::{create_viewer, reads_go_on};

/// Fills `folder`'s file system to the last byte; the file is returned to
/// give the room back.
fn fill(folder: &std::path::Path) -> std::path::PathBuf {
    let path = folder.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0_u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let one = [0_u8; 1];
    while file.write_all(&one).is_ok() {}
    let _ = file.sync_all();
    path
}

#[tokio::test]
async fn a_full_store_disk_fails_writes_clearly_keeps_reads_and_loses_nothing_acknowledged() {
    let test = "a_full_store_disk_fails_writes_clearly_keeps_reads_and_loses_nothing_acknowledged";
    let dir = DevDir::new();
    let state = dir.database().parent().unwrap().to_owned();
    let Some(_disk) = SmallDisk::mount(&state, "32m") else {
        return skip::unavailable(test, "root, to mount a small tmpfs");
    };
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let name = format!("before{n}");
        create_viewer(&root.session, &name).await.unwrap();
        acknowledged.push(name);
    }

    let filler = fill(&state);
    // Writes fail with a status a person can act on; none hangs.
    let mut refused = None;
    for n in 0..20 {
        let name = format!("during{n}");
        match tokio::time::timeout(
            std::time::Duration::from_secs(30),
            create_viewer(&root.session, &name),
        )
        .await
        .expect("a write on a full disk does not hang")
        {
            Ok(()) => acknowledged.push(name),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses writes");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("out of disk space"),
        "{}",
        refused.message()
    );
    // Reads and the session go on.
    let me = root.session.auth().who_am_i(pb::WhoAmIRequest {}).await;
    assert!(me.is_ok(), "{me:?}");
    let listed = root
        .session
        .users()
        .list_users(pb::ListUsersRequest::default())
        .await;
    assert!(listed.is_ok(), "{listed:?}");

    // Room again: writes work, within a while (the audit log recovers).
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match create_viewer(&root.session, "after").await {
            Ok(()) => break,
            Err(status) => assert!(
                std::time::Instant::now() < deadline,
                "writes do not come back: {status:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    acknowledged.push("after".to_owned());
    assert!(daemon.terminate().await.success());

    // Everything acknowledged is there, and the chain verifies.
    let (store, _) = dir.open_store().await;
    let names: Vec<(String,)> = sqlx::query_as("SELECT username FROM users")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    store.close().await;
    let names: Vec<String> = names.into_iter().map(|(n,)| n).collect();
    for name in &acknowledged {
        assert!(names.contains(name), "{name} was acknowledged and is gone");
    }
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
}

#[tokio::test]
async fn a_store_whose_file_system_turns_read_only_refuses_writes_keeps_reads_and_loses_nothing() {
    let test =
        "a_store_whose_file_system_turns_read_only_refuses_writes_keeps_reads_and_loses_nothing";
    let dir = DevDir::new();
    let state = dir.database().parent().unwrap().to_owned();
    let Some(disk) = BreakableDisk::mount(&state, 64) else {
        return skip::unavailable(test, "root, to loop-mount an ext4 image");
    };
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    for n in 0..5 {
        create_viewer(&root.session, &format!("before{n}"))
            .await
            .unwrap();
    }

    // The kernel turns the file system read-only under the open database,
    // as after a disk error.
    disk.break_now();
    assert!(disk.is_read_only());
    let refused = create_viewer(&root.session, "during").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    for words in [
        "could not be read or written",
        "read-only",
        "was not stored",
    ] {
        assert!(refused.message().contains(words), "{}", refused.message());
    }
    // Reads and the session go on.
    let before: Vec<String> = (0..5).map(|n| format!("before{n}")).collect();
    reads_go_on(&root.session, "root", &before).await;
    // The next audited event (a refused call) cannot be committed: health
    // says NOT_SERVING (a write refused by SQLite alone leaves no audit entry
    // to fail, so it is the audit log's failure that health reports).
    let anonymous_list = root
        .anonymous
        .users()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous_list.code(), Code::Unauthenticated);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let health = HealthClient::new(root.session.channel())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if health == ServingStatus::NotServing {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health stayed {health:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // It stops without hanging; what it could not write is in its log.
    assert!(daemon.terminate().await.success());
    assert!(dir.log().contains("audit entry lost"));

    // Repaired (unmounted, checked, mounted again): everything acknowledged
    // is there, nothing of the refused write, and the chain verifies.
    disk.repair();
    let (store, hasher) = dir.open_store().await;
    let users: Vec<String> = sqlx::query_scalar("SELECT username FROM users")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    assert!(
        (0..5).all(|n| users.contains(&format!("before{n}"))),
        "{users:?}"
    );
    assert!(!users.contains(&"during".to_owned()));
    let report = occcd::audit::verify_chain(&store, &hasher).await.unwrap();
    assert!(report.first_broken.is_none() && report.entries_checked > 0);
    store.close().await;
    let daemon = RunningDaemon::start(&dir).await;
    let token = root.session.session().unwrap().clone();
    let session = daemon.client().await.with_session(token);
    create_viewer(&session, "after").await.unwrap();
    daemon.terminate().await;
}
