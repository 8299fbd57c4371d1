//! Issue #16: a client that stops answering HTTP/2 pings — hung, or stopped
//! with SIGSTOP — is dropped with its calls and streams, and its uid's
//! places come back; a client that answers keeps them however quiet it is.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon, os_user::is_root, people::signed_in_super_admin, place_granted, skip,
    workspace_binary,
};
use occcd::service::STREAMS_PER_UID;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Whether `session` may open one more integrity watch now (the watch is
/// closed again at once); any refusal but RESOURCE_EXHAUSTED fails.
async fn may_watch(session: &OcccClient) -> bool {
    place_granted(
        session
            .integrity()
            .watch_integrity(pb::WatchIntegrityRequest {})
            .await,
    )
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped_with_its_streams() {
    let test = "a_client_that_stops_answering_pings_is_dropped_with_its_streams";
    if !is_root() {
        // occc-peer trusts only a root-owned socket.
        skip::unavailable(test, "root (occc-peer trusts only a socket root owns)");
        return;
    }
    let dir = DevDir::new();
    dir.set_config("[socket]\nkeepalive_every_secs = 1\nkeepalive_answer_within_secs = 1\n");
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let token_file = dir.path().join("root.token");
    std::fs::write(&token_file, root.session.session().unwrap().expose()).unwrap();

    // Another process of root's holds the uid's whole share of streams on
    // one connection.
    let mut holder = tokio::process::Command::new(workspace_binary("occc-peer"))
        .arg(dir.socket())
        .arg("hold-watches")
        .arg(&token_file)
        .arg(STREAMS_PER_UID.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("occc-peer runs");
    let mut said = BufReader::new(holder.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), said.next_line())
        .await
        .expect("occc-peer answers within 30 s")
        .unwrap();
    assert_eq!(first.as_deref(), Some("ok holding 16"), "{first:?}");
    assert!(!may_watch(&root.session).await, "the uid's share is full");

    // Quiet but answering pings (three rounds of ping and answer): kept.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !may_watch(&root.session).await,
        "a client that answers pings lost its streams"
    );

    // Stopped: its pings go unanswered, the daemon drops the connection,
    // and the streams' places come back.
    let pid = Pid::from_raw(i32::try_from(holder.id().unwrap()).unwrap());
    kill(pid, Signal::SIGSTOP).unwrap();
    let stopped = Instant::now();
    while !may_watch(&root.session).await {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "the stopped client's streams were still held after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "a stopped client's streams came back {} ms after it stopped (ping every 1 s, answer within 1 s)",
        stopped.elapsed().as_millis()
    );
    kill(pid, Signal::SIGKILL).unwrap();
    let _ = holder.wait().await;
    daemon.terminate().await;
}
