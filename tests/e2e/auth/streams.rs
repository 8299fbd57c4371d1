//! Server streams end with their session (issue #9, item 6): logout,
//! disabling, demotion and deletion end an open WatchIntegrity at once;
//! idle timeout and lifetime end it within a second of the (injected)
//! clock passing them.

use std::time::Duration;

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    in_process_daemon::InProcessDaemon,
    people::{Person, bootstrap_super_admin, elevate, invite, log_in, log_in_with_recovery_code},
};
use tonic::Code;

/// The monitor needs no engine for this: it reports its containers unknown.
const BLIND_MONITOR: &str = "[integrity]\ndocker_socket = \"/nonexistent/docker.sock\"\n";

/// Opens a watch on `session`, takes the first status, and returns the stream.
async fn open_watch(session: &OcccClient) -> tonic::Streaming<pb::IntegrityEvent> {
    let mut watch = session
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await
        .expect("watch")
        .into_inner();
    watch
        .message()
        .await
        .expect("first event")
        .expect("a status");
    watch
}

/// How the stream ended (within `within`).
async fn end_of(
    mut watch: tonic::Streaming<pb::IntegrityEvent>,
    within: Duration,
) -> tonic::Status {
    tokio::time::timeout(within, async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream went on after its session ended")
}

#[tokio::test]
async fn a_watch_ends_with_logout_disabling_demotion_and_deletion() {
    let dir = DevDir::new();
    dir.set_config(BLIND_MONITOR);
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut alice: Person = invite(&admin, &anonymous, "alice", pb::UserRole::Admin).await;
    let user = || pb::UserRef {
        username: "alice".into(),
    };
    let at_once = Duration::from_secs(2);

    let session = log_in_with_recovery_code(&anonymous, &mut alice).await;
    let watch = open_watch(&session).await;
    session.auth().logout(pb::LogoutRequest {}).await.unwrap();
    assert_eq!(end_of(watch, at_once).await.code(), Code::Unauthenticated);

    let session = log_in_with_recovery_code(&anonymous, &mut alice).await;
    let watch = open_watch(&session).await;
    admin.users().disable_user(user()).await.unwrap();
    let ended = end_of(watch, at_once).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    admin.users().enable_user(user()).await.unwrap();

    let session = log_in_with_recovery_code(&anonymous, &mut alice).await;
    let watch = open_watch(&session).await;
    admin
        .users()
        .set_user_role(pb::SetUserRoleRequest {
            username: "alice".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap();
    let ended = end_of(watch, at_once).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");

    let session = log_in_with_recovery_code(&anonymous, &mut alice).await;
    let watch = open_watch(&session).await;
    admin.users().delete_user(user()).await.unwrap();
    assert_eq!(end_of(watch, at_once).await.code(), Code::Unauthenticated);
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_its_session_idles_out_or_reaches_its_lifetime() {
    let dir = DevDir::new();
    dir.set_config(BLIND_MONITOR);
    let daemon = InProcessDaemon::start(&dir).await;
    let anonymous = OcccClient::connect(&occc_client::ConnectOptions::dev(dir.path()))
        .await
        .unwrap();
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let idle = log_in_with_recovery_code(&anonymous, &mut root).await;
    let busy = log_in_with_recovery_code(&anonymous, &mut root).await;
    let minute = Duration::from_secs(60);
    // The recheck runs every second: a second and a margin after the clock
    // passed the limit, the stream has ended.
    let soon = occcd::service::RECHECK_EVERY * 3;

    let watch = open_watch(&idle).await;
    daemon.clock.advance(29 * minute);
    busy.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    daemon.clock.advance(2 * minute);
    let ended = end_of(watch, soon).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("idle"), "{ended:?}");

    // Kept busy, the other session still ends at twelve hours (it was
    // opened 31 minutes ago; 34 × 20 minutes later it is 11 h 51 min old).
    for _ in 0..34 {
        daemon.clock.advance(20 * minute);
        busy.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    }
    let watch = open_watch(&busy).await;
    daemon.clock.advance(10 * minute);
    let ended = end_of(watch, soon).await;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("maximum lifetime"), "{ended:?}");
    daemon.stop().await;
}
