//! Runtime posture: a hardened container is healthy; root, privileged
//! containers, and containers with a mount reaching the host's control (the
//! engine socket by file or by any folder holding it, /run, /var/run,
//! occcd's own state) are flagged by the right checks, and occcd refuses to
//! start them — as the start policy says, reloaded with SIGHUP.

use std::time::Duration;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, say_skipped, shared_socket},
    people::{bootstrap_super_admin, elevate, log_in},
    sha256_file,
};
use tonic::Code;

use super::{Watch, check_ids, container_status, integrity_config, severity_of, wait_for_status};
use crate::support::{eventually, signal};

fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags: Vec<&str> = TestContainer::hardened_flags();
    flags.extend_from_slice(extra);
    flags
}

#[tokio::test]
async fn a_hardened_container_is_healthy_and_unsafe_ones_are_flagged_and_never_started() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "a_hardened_container_is_healthy_and_unsafe_ones_are_flagged_and_never_started",
        );
    };
    let hardened = TestContainer::create(&socket, "hardened", &TestContainer::hardened_flags());
    let mut root_flags = TestContainer::hardened_flags();
    root_flags[1] = "root";
    let root = TestContainer::create(&socket, "root", &root_flags);
    let privileged = TestContainer::create(&socket, "privileged", &with(&["--privileged"]));
    let mount = format!("{}:/var/run/docker.sock", socket.display());
    let engine_socket = TestContainer::create(&socket, "dockersock", &with(&["-v", &mount]));
    // The engine socket by its folder, and the folders of every host socket.
    let socket_folder = format!("{}:/e:ro", socket.parent().unwrap().display());
    let by_folder = TestContainer::create(&socket, "sockdir", &with(&["-v", &socket_folder]));
    let run = TestContainer::create(&socket, "run", &with(&["-v", "/run:/h:ro"]));
    let var_run = TestContainer::create(&socket, "varrun", &with(&["-v", "/var/run:/x:ro"]));
    let dir = DevDir::new();
    // occcd's own state folder (made as occcd makes it).
    let state_dir = dir.database().parent().unwrap().to_owned();
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::set_permissions(
        &state_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let state_mount = format!("{}:/s:ro", dir.database().parent().unwrap().display());
    let state = TestContainer::create(&socket, "state", &with(&["-v", &state_mount]));
    let watched = [
        Watch::new(&hardened.name),
        Watch::new(&root.name),
        Watch::new(&privileged.name),
        Watch::new(&engine_socket.name),
        Watch::new(&by_folder.name),
        Watch::new(&run.name),
        Watch::new(&var_run.name),
        Watch::new(&state.name),
    ];
    dir.set_config(&integrity_config(&socket, &watched));
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut person = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut person).await;
    elevate(&admin, &mut person).await;

    // Start through occcd, pin what runs, and it is healthy.
    let started = admin
        .environment()
        .start_environment(pb::EnvironmentRequest {
            container: hardened.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, "running");
    let pinned = admin
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: hardened.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        pinned
            .image_files
            .iter()
            .any(|f| f.path == "/app/gateway.sh"),
        "{pinned:?}"
    );
    // The digest read through the archive API (a large file: hashed beside the
    // stream) matches the host's copy the image was built from.
    let busybox = pinned
        .image_files
        .iter()
        .find(|f| f.path == "/bin/busybox")
        .unwrap();
    assert_eq!(
        busybox.sha256,
        sha256_file(std::path::Path::new("/bin/busybox"))
    );
    let healthy = wait_for_status(&admin, &hardened.name, Duration::from_secs(20), |s| {
        s.health() == pb::ContainerHealth::Healthy
    })
    .await;
    assert!(healthy.baseline_pinned);
    assert!(healthy.findings.is_empty(), "{:?}", check_ids(&healthy));

    // The unsafe ones: each flagged by its check.
    admin
        .integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let expectations = [
        (&root, "runtime.root_user", "root"),
        (&privileged, "runtime.privileged", "privileged"),
        (&engine_socket, "runtime.host_control_mounted", "socket"),
        (&by_folder, "runtime.host_control_mounted", "engine socket"),
        (&run, "runtime.host_control_mounted", "/run"),
        (&var_run, "runtime.host_control_mounted", "/var/run"),
        (&state, "runtime.host_control_mounted", "occcd's own state"),
    ];
    for (container, check, reason) in expectations {
        let status = container_status(&admin, &container.name).await;
        assert_eq!(
            status.health(),
            pb::ContainerHealth::Degraded,
            "{}",
            container.name
        );
        assert_eq!(severity_of(&status, check), pb::Severity::High, "{check}");
        // And occcd will not start it, saying why.
        let refused = admin
            .environment()
            .start_environment(pb::EnvironmentRequest {
                container: container.name.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains(reason), "{refused:?}");
        assert_eq!(
            container.inspect("{{.State.Status}}"),
            "created",
            "never started"
        );
    }

    // A monitored name that does not exist is unknown, never healthy.
    daemon.terminate().await;
    let dir = DevDir::new();
    dir.set_config(&integrity_config(
        &socket,
        &[Watch::new("occc-e2e-no-such-container")],
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let mut person = bootstrap_super_admin(&dir, &client, "root").await;
    let viewer = log_in(&client, &mut person).await;
    viewer
        .integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let missing = container_status(&viewer, "occc-e2e-no-such-container").await;
    assert_eq!(missing.health(), pb::ContainerHealth::Unknown);
    assert!(missing.reason.contains("not found"), "{missing:?}");
    daemon.terminate().await;
}

/// The start policy a reload applies is the one the next start is judged
/// by: a root container refused, then started once `refuse_root = false`
/// is reloaded (SIGHUP) into the running daemon.
#[tokio::test]
async fn a_reloaded_start_policy_judges_the_next_start() {
    let Some(socket) = shared_socket() else {
        return say_skipped("a_reloaded_start_policy_judges_the_next_start");
    };
    let mut root_flags = TestContainer::hardened_flags();
    root_flags[1] = "root";
    let root = TestContainer::create(&socket, "reloadroot", &root_flags);
    let dir = DevDir::new();
    let config = integrity_config(&socket, &[Watch::new(&root.name)]);
    dir.set_config(&config);
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut person = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut person).await;
    elevate(&admin, &mut person).await;
    let start = async || {
        admin
            .environment()
            .start_environment(pb::EnvironmentRequest {
                container: root.name.clone(),
            })
            .await
    };
    let refused = start().await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("root"), "{refused:?}");

    dir.set_config(&format!(
        "{config}[integrity.start_policy]\nrefuse_root = false\n"
    ));
    signal(&daemon, nix::sys::signal::Signal::SIGHUP);
    eventually("the reload", &dir, || {
        dir.log()
            .contains("integrity.start_policy.refuse_root: true -> false")
    })
    .await;
    let started = start().await.unwrap().into_inner();
    assert_eq!(started.state, "running");
    assert_eq!(root.inspect("{{.State.Status}}"), "running");
    daemon.terminate().await;
}
