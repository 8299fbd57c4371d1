//! Engine faults: dockerd stopped → unknown within 5 s, restarted →
//! monitoring resumes; the connection cut while the engine runs on → the
//! events of the outage are caught up when it returns.

use std::time::{Duration, Instant};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{PrivateEngine, TestContainer, docker_ok},
    os_user::is_root,
    people::{bootstrap_super_admin, log_in},
    socket_proxy::SocketProxy,
};

use super::{Watch, integrity_config, wait_for_status, watch_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_outages_go_unknown_fast_and_lose_no_event() {
    if !is_root() {
        occc_tests::skip::unavailable(
            "engine_outages_go_unknown_fast_and_lose_no_event",
            "root (it starts its own dockerd)",
        );
        return;
    }
    let mut engine = PrivateEngine::start();
    let socket = engine.socket();
    let mut flags = TestContainer::hardened_flags();
    flags.extend(["--network", "none"]);
    let gateway = TestContainer::create(&socket, "outage", &flags);
    gateway.start();
    let relay_dir = tempfile::tempdir().unwrap();
    let mut proxy = SocketProxy::start(&relay_dir.path().join("engine.sock"), &socket);

    let dir = DevDir::new();
    dir.set_config(&integrity_config(
        proxy.path(),
        &[Watch::new(&gateway.name)],
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let viewer = log_in(&anonymous, &mut root).await;
    let healthy = |s: &pb::ContainerStatus| s.health() == pb::ContainerHealth::Healthy;
    wait_for_status(&viewer, &gateway.name, Duration::from_secs(20), healthy).await;

    // 1. dockerd stops: unknown within 5 s, never healthy while blind.
    let blind = watch_until(&viewer, &gateway.name, Duration::from_secs(5), |s| {
        s.health() == pb::ContainerHealth::Unknown
    })
    .await;
    let stopped = Instant::now();
    engine.stop();
    let status = blind.await.unwrap();
    println!("engine stopped → unknown after {:?}", stopped.elapsed());
    assert!(
        status.reason.contains("unreachable")
            || status.reason.contains("lost")
            || status.reason.contains("ended"),
        "{status:?}"
    );

    // dockerd is back: monitoring resumes (live-restore kept the container).
    engine.resume();
    wait_for_status(&viewer, &gateway.name, Duration::from_secs(20), healthy).await;

    // 2. The connection is cut while the engine runs on, and someone execs
    //    in during the outage.
    let blind = watch_until(&viewer, &gateway.name, Duration::from_secs(5), |s| {
        s.health() == pb::ContainerHealth::Unknown
    })
    .await;
    proxy.cut();
    blind.await.unwrap();
    docker_ok(&socket, &["exec", &gateway.name, "sh", "-c", "true"]);
    let caught_up = watch_until(&viewer, &gateway.name, Duration::from_secs(20), |s| {
        s.quarantine.is_some()
    })
    .await;
    proxy.restore();
    let status = caught_up.await.unwrap();
    assert!(
        status.findings.iter().any(|f| f.check_id == "event.exec"),
        "{status:?}"
    );
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    daemon.terminate().await;
}
