//! Engine faults: dockerd stopped → unknown within 5 s, restarted →
//! monitoring resumes; the connection cut while the engine runs on → the
//! events of the outage are caught up when it returns; dockerd killed in
//! the middle of a quarantine → the quarantine stays visibly incomplete
//! while the engine is gone and completes when it is back.

use std::time::{Duration, Instant};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{PrivateEngine, TestContainer, exec_detached},
    os_user::is_root,
    people::{bootstrap_super_admin, log_in, log_in_with_recovery_code},
    socket_proxy::SocketProxy,
};
use tonic::Code;

use crate::support::audit_rows_of_kind;

use super::{
    Watch, Watching, integrity_config, relayed_container, wait_for_status, watch_until,
    watching_healthy,
};

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
    exec_detached(&socket, &gateway.name, &["sh", "-c", "true"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_killed_mid_quarantine_leaves_it_visibly_incomplete_until_it_completes() {
    if !is_root() {
        occc_tests::skip::unavailable(
            "dockerd_killed_mid_quarantine_leaves_it_visibly_incomplete_until_it_completes",
            "root (it starts its own dockerd)",
        );
        return;
    }
    let mut engine = PrivateEngine::start();
    let socket = engine.socket();
    let relayed = relayed_container(&socket, "midq");
    let (gateway, proxy) = (&relayed.gateway, &relayed.proxy);
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "1");
    let dir = relayed.watching_dir();
    let Watching {
        daemon,
        anonymous,
        mut root,
        session,
    } = watching_healthy(&dir, &gateway.name).await;

    // The network disconnect hangs in the engine (the pause may not be
    // answered in time either, behind the exec), and the engine dies under
    // it.
    proxy.hang("POST", "/disconnect");
    let quarantined = watch_until(&session, &gateway.name, Duration::from_secs(60), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["true"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !proxy.faulted().iter().any(|f| f.contains("/disconnect")) {
        assert!(
            Instant::now() < deadline,
            "the isolation never reached the network step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.kill();
    proxy.clear();
    let status = quarantined.await.unwrap();
    let quarantine = status.quarantine.clone().unwrap();
    println!("engine killed mid-quarantine: {quarantine:?}");
    assert!(
        quarantine.isolation.starts_with("incomplete"),
        "the engine died before the network was cut, yet: {quarantine:?}"
    );
    assert!(
        status.findings.iter().any(|f| f.check_id == "event.exec"),
        "the trigger is on record: {status:?}"
    );

    // Whatever the isolation achieved, sessions ended and sensitive
    // operations are locked.
    let ended = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    occc_tests::people::elevate_with_recovery_code(&session, &mut root).await;
    let locked = session
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: gateway.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition, "{locked:?}");
    assert!(locked.message().contains("quarantined"), "{locked:?}");

    // Still incomplete while the engine is gone, never reported verified.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let isolation = |s: &pb::ContainerStatus| {
        s.quarantine
            .as_ref()
            .map(|q| q.isolation.clone())
            .unwrap_or_default()
    };
    let while_gone = super::container_status(&session, &gateway.name).await;
    assert!(
        isolation(&while_gone).starts_with("incomplete"),
        "{while_gone:?}"
    );

    // The engine is back (live-restore kept the container, paused): the
    // re-isolation at the next poll finishes the job and verifies it.
    engine.resume();
    let completed = watch_until(&session, &gateway.name, Duration::from_secs(60), |s| {
        s.quarantine
            .as_ref()
            .is_some_and(|q| q.isolation == "verified")
    })
    .await;
    let Ok(status) = completed.await else {
        let isolating: Vec<String> = dir
            .log()
            .lines()
            .filter(|line| {
                ["isolat", "pause", "quarantin"]
                    .iter()
                    .any(|w| line.contains(w))
            })
            .map(str::to_owned)
            .collect();
        panic!(
            "not completed within 60 s; the engine says {}; the daemon's log:\n{}\nthe engine's log:\n{}",
            gateway.inspect("{{json .State}}"),
            isolating.join("\n"),
            engine.log_tail(40),
        );
    };
    // Paused by the engine — or, when dockerd died after its runtime froze
    // the container but before it noted the pause, frozen per the kernel
    // while the engine says "running" (and refuses to pause it again).
    let paused_per_engine = gateway.inspect("{{.State.Paused}}") == "true";
    let pid = gateway.inspect("{{.State.Pid}}");
    assert!(
        paused_per_engine || freezer_says_frozen(&pid),
        "verified, yet neither the engine nor the kernel has it paused: {status:?}"
    );
    println!("paused per the engine: {paused_per_engine}");
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "0");
    assert_eq!(gateway.inspect("{{.HostConfig.RestartPolicy.Name}}"), "no");
    let chain = session.verify_audit_chain().await;
    daemon.terminate().await;

    // On record: one quarantine, the finding that caused it, the
    // re-isolation, and a chain that verifies.
    let (store, _) = dir.open_store().await;
    let started = audit_rows_of_kind(&store, "quarantine_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(
        started[0].2.contains("\\\"verified\\\":false")
            && started[0].2.contains("engine is unreachable"),
        "the unfinished isolation is on record: {:?}",
        started[0]
    );
    let checked = audit_rows_of_kind(&store, "isolation_checked").await;
    assert!(!checked.is_empty(), "the completion is audited");
    if !paused_per_engine {
        assert!(
            checked
                .iter()
                .any(|(_, _, detail)| detail.contains("\\\"paused_per_kernel\\\":true")),
            "the kernel's word is on record: {checked:?}"
        );
    }
    let findings = audit_rows_of_kind(&store, "finding_recorded").await;
    assert!(
        findings
            .iter()
            .any(|(_, _, detail)| detail.contains("event.exec")),
        "{findings:?}"
    );
    match chain {
        Ok(verified) => assert!(verified.first_broken.is_none(), "{verified:?}"),
        Err(status) => panic!("the chain was not verified: {status:?}"),
    }
}

/// Whether the freezer of process `pid`'s cgroup reads frozen (cgroup v1
/// `freezer.state`, or v2 `cgroup.events`), read here independently of
/// occcd's own reader.
fn freezer_says_frozen(pid: &str) -> bool {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    membership.lines().any(|line| {
        let parts: Vec<&str> = line.splitn(3, ':').collect();
        match parts.as_slice() {
            [_, controllers, path] if controllers.split(',').any(|c| c == "freezer") => {
                std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))
                    .is_ok_and(|state| state.trim() == "FROZEN")
            }
            ["0", "", path] => {
                std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.events"))
                    .is_ok_and(|events| events.lines().any(|l| l == "frozen 1"))
            }
            _ => false,
        }
    })
}

/// The engine's events are read from the cursor stored in the database:
/// an exec while occcd was stopped is caught when it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_while_occcd_was_stopped_quarantines_at_the_next_start() {
    let Some(socket) = occc_tests::docker::shared_socket() else {
        return occc_tests::docker::say_skipped(
            "an_exec_while_occcd_was_stopped_quarantines_at_the_next_start",
        );
    };
    let relayed = relayed_container(&socket, "offline-exec");
    let gateway = &relayed.gateway;
    let dir = relayed.watching_dir();
    let Watching {
        daemon,
        anonymous,
        mut root,
        ..
    } = watching_healthy(&dir, &gateway.name).await;
    drop(anonymous);
    assert!(daemon.terminate().await.success());
    exec_detached(&socket, &gateway.name, &["sh", "-c", "true"]);

    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let caught = watch_until(&session, &gateway.name, Duration::from_secs(30), |s| {
        s.quarantine.is_some()
    })
    .await;
    let status = caught.await.unwrap();
    assert!(
        status.findings.iter().any(|f| f.check_id == "event.exec"),
        "{status:?}"
    );
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    daemon.terminate().await;
}
