//! Issue #10: what the container's own processes do, without `docker exec`,
//! is seen: a process under an allowed name running another executable (a
//! renamed busybox) is quarantined; a new executable in /tmp (tmpfs) or
//! /dev/shm is quarantined within seconds although the poll interval is ten
//! minutes (the real-time watch); a 100 MiB new executable — too large to
//! hash — is critical all the same.

use std::time::{Duration, Instant};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, say_skipped, shared_socket},
    people::{Person, log_in_with_recovery_code, signed_in_super_admin},
};

use super::{
    Go, Watch, acting_container, integrity_config, pin_and_wait_until_healthy, severity_of,
    wait_for_status, watch_until,
};

async fn admin(dir: &DevDir, daemon: &RunningDaemon) -> (OcccClient, Person, OcccClient) {
    let root = signed_in_super_admin(dir, daemon).await;
    (root.anonymous, root.person, root.session)
}

/// Fires `go` and waits (on a fresh session: every quarantine ends them all)
/// until `container` is quarantined; returns its status and how long it took.
async fn quarantined_after(
    anonymous: &OcccClient,
    root: &mut Person,
    container: &str,
    go: &Go,
    within: Duration,
) -> (pb::ContainerStatus, Duration) {
    let session = log_in_with_recovery_code(anonymous, root).await;
    let waiting = watch_until(&session, container, within, |s| s.quarantine.is_some()).await;
    let fired = Instant::now();
    go.fire();
    let status = match waiting.await {
        Ok(status) => status,
        Err(err) => panic!(
            "{err}; last status: {:?}",
            super::container_status(&session, container).await
        ),
    };
    (status, fired.elapsed())
}

#[tokio::test]
async fn a_renamed_busybox_the_container_starts_itself_is_quarantined() {
    let Some(socket) = shared_socket() else {
        return say_skipped("a_renamed_busybox_the_container_starts_itself_is_quarantined");
    };
    // "node" is an allowed name; what runs under it is busybox.
    let go = Go::new();
    let mut flags = TestContainer::hardened_flags();
    flags.extend(["--tmpfs", "/tmp:exec"]);
    let gateway = acting_container(
        &socket,
        "masquerade",
        &flags,
        &go,
        // Named node by the file it runs; busybox sees argv[0] "sleep".
        "busybox ln -s /bin/busybox /tmp/node && (exec -a sleep /tmp/node 1000) &",
    );
    let dir = DevDir::new();
    let mut watch = Watch::new(&gateway.name);
    watch.allow = &["sleep", "node", "sh"];
    dir.set_config(&integrity_config(&socket, &[watch]));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut root, session) = admin(&dir, &daemon).await;
    pin_and_wait_until_healthy(&session, &gateway.name).await;

    let (status, _) = quarantined_after(
        &anonymous,
        &mut root,
        &gateway.name,
        &go,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        severity_of(&status, "process.masquerade"),
        pb::Severity::Critical,
        "{status:?}"
    );
    let finding = status
        .findings
        .iter()
        .find(|f| f.check_id == "process.masquerade")
        .unwrap();
    assert!(finding.evidence_json.contains("node"), "{finding:?}");
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    daemon.terminate().await;
}

#[tokio::test]
async fn new_executables_anywhere_are_quarantined_in_real_time_even_when_too_large_to_hash() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "new_executables_anywhere_are_quarantined_in_real_time_even_when_too_large_to_hash",
        );
    };
    let script = |path: &str| format!("echo '#!/bin/sh' > {path} && chmod +x {path}");
    let mut tmpfs = TestContainer::hardened_flags();
    tmpfs.extend(["--tmpfs", "/tmp:exec"]);
    let go_tmp = Go::new();
    let in_tmp = acting_container(&socket, "newtmp", &tmpfs, &go_tmp, &script("/tmp/x.sh"));
    let go_shm = Go::new();
    let in_shm = acting_container(
        &socket,
        "newshm",
        &TestContainer::hardened_flags(),
        &go_shm,
        &script("/dev/shm/x.sh"),
    );
    // 100 MiB (sparse) in the writable layer: more than the 64 MiB hashed.
    let mut writable = TestContainer::hardened_flags();
    writable.retain(|flag| *flag != "--read-only");
    let go_big = Go::new();
    let big = acting_container(
        &socket,
        "newbig",
        &writable,
        &go_big,
        "busybox truncate -s 100M /tmp/big && chmod +x /tmp/big",
    );
    let dir = DevDir::new();
    // Ten-minute polls: only the real-time watch can be this quick.
    dir.set_config(
        &integrity_config(
            &socket,
            &[
                Watch::new(&in_tmp.name),
                Watch::new(&in_shm.name),
                Watch::new(&big.name),
            ],
        )
        .replace("poll_interval_ms = 500", "poll_interval_ms = 600000")
        .replace("hash_interval_ms = 1000", "hash_interval_ms = 600000"),
    );
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut root, session) = admin(&dir, &daemon).await;
    for container in [&in_tmp, &in_shm, &big] {
        wait_for_status(&session, &container.name, Duration::from_secs(20), |s| {
            s.health() != pb::ContainerHealth::Unknown
        })
        .await;
    }
    // The watches are in place once the first sweeps are done.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for (container, go) in [(&in_tmp, &go_tmp), (&in_shm, &go_shm), (&big, &go_big)] {
        let (status, took) = quarantined_after(
            &anonymous,
            &mut root,
            &container.name,
            go,
            Duration::from_secs(30),
        )
        .await;
        println!("{}: quarantined {took:?} after the signal", container.name);
        assert_eq!(
            severity_of(&status, "files.new_executable"),
            pb::Severity::Critical,
            "{status:?}"
        );
        assert_eq!(container.inspect("{{.State.Paused}}"), "true");
    }
    let status = super::container_status(
        &log_in_with_recovery_code(&anonymous, &mut root).await,
        &big.name,
    )
    .await;
    let finding = status
        .findings
        .iter()
        .find(|f| f.check_id == "files.new_executable")
        .unwrap();
    assert!(
        finding.evidence_json.contains("/tmp/big") && finding.evidence_json.contains("104857600"),
        "the too-large file is named with its size: {finding:?}"
    );
    daemon.terminate().await;
}

#[tokio::test]
async fn a_tmpfs_moved_away_with_a_folder_in_its_place_is_quarantined() {
    let Some(socket) = shared_socket() else {
        return say_skipped("a_tmpfs_moved_away_with_a_folder_in_its_place_is_quarantined");
    };
    // /tmp belongs to the container's user, so it can rename the folder
    // holding another tmpfs: the mount moves with it.
    let mut flags = TestContainer::hardened_flags();
    flags.extend([
        "--tmpfs",
        "/tmp:exec,uid=1000,gid=1000",
        "--tmpfs",
        "/tmp/work/cache:exec,uid=1000",
    ]);
    let go = Go::new();
    let hider = acting_container(
        &socket,
        "movetmpfs",
        &flags,
        &go,
        "busybox mv /tmp/work /tmp/elsewhere && busybox mkdir -p /tmp/work/cache \
         && echo '#!/bin/sh' > /tmp/elsewhere/cache/x.sh && chmod +x /tmp/elsewhere/cache/x.sh",
    );
    let dir = DevDir::new();
    dir.set_config(&integrity_config(&socket, &[Watch::new(&hider.name)]));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, mut root, session) = admin(&dir, &daemon).await;
    wait_for_status(&session, &hider.name, Duration::from_secs(20), |s| {
        s.health() != pb::ContainerHealth::Unknown
    })
    .await;
    let (status, _) = quarantined_after(
        &anonymous,
        &mut root,
        &hider.name,
        &go,
        Duration::from_secs(20),
    )
    .await;
    let finding = status
        .findings
        .iter()
        .find(|f| f.check_id == "files.unexamined")
        .unwrap_or_else(|| panic!("{status:?}"));
    assert_eq!(finding.severity(), pb::Severity::Critical, "{finding:?}");
    assert!(finding.summary.contains("/tmp/work/cache"), "{finding:?}");
    assert!(
        finding.evidence_json.contains("no longer a mount"),
        "{finding:?}"
    );
    daemon.terminate().await;
}
