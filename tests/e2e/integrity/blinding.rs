//! Issue #10: the monitor cannot be blinded. A watched host file replaced
//! by a FIFO or by a link to /etc/shadow hangs nothing — checks, baselines
//! and the snapshot's host-file hashes go on — and both are findings; an
//! engine call that never answers makes the status UNKNOWN within twice the
//! poll interval, never stale-healthy.

use std::time::{Duration, Instant};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, exec_detached, say_skipped, shared_socket},
    people::{SignedIn, log_in_with_recovery_code, signed_in_super_admin},
};

use super::{
    Watch, Watching, check_ids, container_status, integrity_config, pin_and_wait_until_healthy,
    relayed_container, severity_of, wait_for_status, watch_until, watching_healthy,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_link_in_a_watched_path_hangs_nothing_and_is_a_finding() {
    let Some(socket) = shared_socket() else {
        return say_skipped("a_fifo_or_a_link_in_a_watched_path_hangs_nothing_and_is_a_finding");
    };
    let host = tempfile::tempdir().unwrap();
    let config_file = host.path().join("openclaw.json");
    let token_file = host.path().join("token.json");
    std::fs::write(&config_file, "{}\n").unwrap();
    std::fs::write(&token_file, "{}\n").unwrap();
    let mount = format!("{}:/home/node/.openclaw", host.path().display());
    let mut flags = TestContainer::hardened_flags();
    flags.extend(["-v", &mount]);
    let gateway = TestContainer::create(&socket, "fifo", &flags);
    gateway.start();
    let dir = DevDir::new();
    let mut watch = Watch::new(&gateway.name);
    let host_files = [config_file.as_path(), token_file.as_path()];
    watch.host_files = &host_files;
    dir.set_config(&integrity_config(&socket, &[watch]));
    let daemon = RunningDaemon::start(&dir).await;
    let SignedIn {
        anonymous,
        person: mut root,
        session,
    } = signed_in_super_admin(&dir, &daemon).await;
    pin_and_wait_until_healthy(&session, &gateway.name).await;

    // What a compromised gateway can do in its own bind mount.
    std::fs::remove_file(&config_file).unwrap();
    nix::unistd::mkfifo(
        &config_file,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::fs::remove_file(&token_file).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &token_file).unwrap();

    // Checks run to the end (hashes included) and say what they found.
    let started = Instant::now();
    let checked = tokio::time::timeout(
        Duration::from_secs(15),
        session.integrity().run_checks(pb::RunChecksRequest {}),
    )
    .await
    .expect("RunChecks returns: nothing hangs on a FIFO")
    .unwrap()
    .into_inner();
    println!(
        "checks with a FIFO and a link watched: {:?}",
        started.elapsed()
    );
    let status = checked
        .containers
        .iter()
        .find(|c| c.container == gateway.name)
        .unwrap();
    assert_eq!(
        severity_of(status, "host.file_not_regular"),
        pb::Severity::High,
        "{:?}",
        check_ids(status)
    );
    let not_regular: Vec<&str> = status
        .findings
        .iter()
        .filter(|f| f.check_id == "host.file_not_regular")
        .map(|f| f.summary.as_str())
        .collect();
    assert_eq!(not_regular.len(), 2, "{not_regular:?}");
    assert!(
        not_regular
            .iter()
            .any(|s| s.contains("openclaw.json") && s.contains("FIFO"))
            && not_regular
                .iter()
                .any(|s| s.contains("token.json") && s.contains("link")),
        "both named with what they are: {not_regular:?}"
    );
    assert_ne!(status.health(), pb::ContainerHealth::Healthy);
    // Polls go on (the status keeps being checked; nothing changes, so the
    // watch stays quiet: ask).
    let before = status.checked_at_unix_ms;
    let mut later = container_status(&session, &gateway.name).await;
    for _ in 0..100 {
        if later.checked_at_unix_ms > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        later = container_status(&session, &gateway.name).await;
    }
    assert!(later.checked_at_unix_ms > before, "{later:?}");
    assert_ne!(later.health(), pb::ContainerHealth::Healthy);

    // A snapshot hashes the watched host files too: it completes.
    let quarantined = watch_until(&session, &gateway.name, Duration::from_secs(10), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["true"]);
    quarantined.await.unwrap();
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let mut listed = Vec::new();
    for _ in 0..150 {
        listed = session
            .integrity()
            .list_snapshots(pb::ListSnapshotsRequest {})
            .await
            .unwrap()
            .into_inner()
            .snapshots;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1, "the snapshot completed");
    assert!(
        listed[0]
            .artifacts
            .iter()
            .any(|a| a.name == "host_files.json")
    );
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_call_that_never_answers_makes_the_status_unknown_within_two_intervals() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "an_engine_call_that_never_answers_makes_the_status_unknown_within_two_intervals",
        );
    };
    let relayed = relayed_container(&socket, "hung");
    let (gateway, proxy) = (&relayed.gateway, &relayed.proxy);
    let dir = relayed.watching_dir();
    let Watching {
        daemon,
        anonymous: _,
        root: _,
        session,
    } = watching_healthy(&dir, &gateway.name).await;

    // The engine stops answering one call every sweep makes; events and
    // pings go on, so only the watchdog can tell.
    let blind = watch_until(&session, &gateway.name, Duration::from_secs(5), |s| {
        s.health() == pb::ContainerHealth::Unknown
    })
    .await;
    let hung = Instant::now();
    proxy.hang("GET", &format!("/containers/{}/top", gateway.name));
    let status = blind.await.unwrap();
    let took = hung.elapsed();
    println!("engine call hung → unknown after {took:?} (poll interval 500 ms)");
    assert!(status.reason.contains("stale"), "{status:?}");
    assert!(!proxy.faulted().is_empty());

    // The engine answers again: the monitor sees again.
    proxy.clear();
    wait_for_status(&session, &gateway.name, Duration::from_secs(30), |s| {
        s.health() == pb::ContainerHealth::Healthy
    })
    .await;
    daemon.terminate().await;
}
