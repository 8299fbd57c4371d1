//! Start, stop, and what is left behind.

use std::{fs, os::unix::fs::PermissionsExt};

use occc_tests::{DevDir, RunningDaemon};

use crate::support::audit_rows_of_kind;

#[tokio::test]
async fn second_daemon_on_a_live_socket_is_refused() {
    let dir = DevDir::new();
    let first = RunningDaemon::start(&dir).await;
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(!status.success());
    assert!(output.contains("already serving"), "{output}");
    first
        .client()
        .await
        .health()
        .await
        .expect("first daemon unaffected");
}

#[tokio::test]
async fn stale_socket_of_a_killed_daemon_is_replaced() {
    let dir = DevDir::new();
    RunningDaemon::start(&dir).await.kill_hard();
    assert!(
        dir.socket().exists(),
        "SIGKILL leaves the socket file behind"
    );
    let second = RunningDaemon::start(&dir).await;
    second
        .client()
        .await
        .health()
        .await
        .expect("restarted daemon serves");
}

#[tokio::test]
async fn sigterm_stops_cleanly_removes_socket_and_audits_both_ends() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let status = daemon.terminate().await;
    assert!(status.success(), "exit status {status}");
    assert!(!dir.socket().exists());
    let (store, _) = dir.open_store().await;
    assert_eq!(audit_rows_of_kind(&store, "daemon_started").await.len(), 1);
    let stopped = audit_rows_of_kind(&store, "daemon_stopped").await;
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].2.contains("SIGTERM"), "{}", stopped[0].2);
}

#[tokio::test]
async fn socket_folder_writable_by_others_is_refused() {
    let dir = DevDir::new();
    // Its group may not write to it either (they could swap the socket).
    for mode in [0o777, 0o770] {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
        let (status, output) = dir.run_occcd(&["serve"]).await;
        assert!(!status.success());
        assert!(
            output.contains("writable by its group or others"),
            "{output}"
        );
    }
    // Nor may it belong to another user (as root, the test can make it so).
    if nix::unistd::geteuid().is_root() {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(dir.path(), Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        let (status, output) = dir.run_occcd(&["serve"]).await;
        assert!(!status.success());
        assert!(output.contains("belongs to uid 4242"), "{output}");
        nix::unistd::chown(dir.path(), Some(nix::unistd::geteuid()), None).unwrap();
    }
    assert!(
        !dir.database().exists(),
        "nothing created before the socket check"
    );
}

#[tokio::test]
async fn socket_has_mode_0660() {
    use std::os::unix::fs::MetadataExt;
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let socket = fs::metadata(dir.socket()).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        socket.gid(),
        nix::unistd::getegid().as_raw(),
        "without `socket.group`, the daemon's own group (a configured one: \
         `a_token_replayed_from_another_os_user_is_refused`)"
    );
}

#[tokio::test]
async fn a_never_ending_stream_does_not_keep_the_daemon_alive_past_the_grace() {
    use occc_client::proto_health::{HealthCheckRequest, health_client::HealthClient};
    let dir = DevDir::new();
    dir.set_config("[socket]\nshutdown_grace_ms = 200\n");
    let daemon = RunningDaemon::start(&dir).await;
    let mut health = HealthClient::new(daemon.client().await.channel());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().expect("first status");
    let status = daemon.terminate().await;
    assert!(status.success(), "exit status {status}");
    assert!(dir.log().contains("cutting them off"), "{}", dir.log());
    let (store, _) = dir.open_store().await;
    assert_eq!(audit_rows_of_kind(&store, "daemon_stopped").await.len(), 1);
}
