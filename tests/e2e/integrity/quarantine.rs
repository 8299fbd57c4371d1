//! `docker exec … sh` into the monitored container → quarantine: paused, no
//! networks, restart policy "no", sessions revoked, sensitive RPCs locked,
//! snapshot written and verified; only an elevated super-admin releases it.

use std::time::Duration;

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, exec_detached, say_skipped, shared_socket},
    people::{Person, bootstrap_super_admin, elevate, invite, log_in_with_recovery_code},
    receivers::{Rsyslog, WebhookReceiver},
    workspace_binary,
};
use tokio_stream::StreamExt;
use tonic::Code;

use super::{Watch, integrity_config, wait_for_status, watch_until};
use crate::foundation::metrics::{free_port, get, until_listening};
use crate::support::audit_rows_of_kind;

const PLANTED: &str = "ANTHROPIC_API_KEY=sk-planted-3f9c1e7d2b";

async fn snapshot_of(client: &OcccClient, id: &str) -> pb::SnapshotInfo {
    for _ in 0..100 {
        let list = client
            .integrity()
            .list_snapshots(pb::ListSnapshotsRequest {})
            .await
            .unwrap()
            .into_inner();
        if let Some(found) = list.snapshots.into_iter().find(|s| s.snapshot_id == id) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("snapshot {id} was not stored");
}

async fn release(
    client: &OcccClient,
    container: &str,
) -> Result<pb::IntegrityStatus, tonic::Status> {
    client
        .integrity()
        .release_quarantine(pb::ReleaseQuarantineRequest {
            container: container.to_owned(),
            note: "exec was a drill by the on-call engineer; image re-verified".to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn sign_in(anonymous: &OcccClient, person: &mut Person, elevated: bool) -> OcccClient {
    let session = log_in_with_recovery_code(anonymous, person).await;
    if elevated {
        elevate(&session, person).await;
    }
    session
}

#[tokio::test]
async fn exec_into_the_container_quarantines_it_until_a_super_admin_releases_it() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "exec_into_the_container_quarantines_it_until_a_super_admin_releases_it",
        );
    };
    // A secret in the container's environment, as OpenClaw's API keys are.
    let mut flags = TestContainer::hardened_flags();
    flags.extend(["-e", PLANTED]);
    let gateway = TestContainer::create(&socket, "exec", &flags);
    gateway.start();
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "1");
    let dir = DevDir::new();
    // Events to rsyslog and a webhook, and metrics: what a fleet sees of it.
    let rsyslog = Rsyslog::start(None);
    let secret_file = dir.path().join("webhook.secret");
    let webhook = WebhookReceiver::start(&"w".repeat(40), &secret_file);
    let metrics_port = free_port();
    dir.set_config(&format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [events.syslog]\naddress = \"127.0.0.1:{}\"\n\
         [events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        integrity_config(&socket, &[Watch::new(&gateway.name)]),
        rsyslog.port,
        webhook.url,
        secret_file.display().to_string()
    ));
    let daemon = RunningDaemon::start_with_log_filter(&dir, "trace").await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin_session = sign_in(&anonymous, &mut root, true).await;
    let mut ada = invite(&admin_session, &anonymous, "ada", pb::UserRole::Admin).await;
    let mut otto = invite(&admin_session, &anonymous, "otto", pb::UserRole::Operator).await;
    admin_session
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: gateway.name.clone(),
        })
        .await
        .unwrap();
    wait_for_status(
        &admin_session,
        &gateway.name,
        Duration::from_secs(20),
        |s| s.health() == pb::ContainerHealth::Healthy,
    )
    .await;
    let ada_session = sign_in(&anonymous, &mut ada, false).await;

    // The attack.
    let quarantined = watch_until(&ada_session, &gateway.name, Duration::from_secs(10), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["sh", "-c", "true"]);
    let status = quarantined.await.unwrap();
    assert_eq!(status.health(), pb::ContainerHealth::Compromised);
    assert!(status.findings.iter().any(|f| f.check_id == "event.exec"));
    let quarantine = status.quarantine.unwrap();
    assert_eq!(quarantine.isolation, "verified", "{quarantine:?}");

    // Measured: the exec's arrival to each isolation step, and the checks.
    until_listening(metrics_port).await;
    let (_, exposition) = get(metrics_port, "/metrics").await;
    for expected in [
        "occcd_quarantine_isolation_seconds_count{step=\"paused\"} 1",
        "occcd_quarantine_isolation_seconds_count{step=\"verified\"} 1",
        "occcd_check_duration_seconds_count{check=\"inspect\"}",
        "occcd_check_duration_seconds_count{check=\"process\"}",
    ] {
        assert!(exposition.contains(expected), "{expected}:\n{exposition}");
    }
    // The collectors hear of it: the finding, the health change, the quarantine.
    for (name, received) in [
        ("rsyslog", &(|| rsyslog.received()) as &dyn Fn() -> String),
        ("webhook", &|| webhook.received()),
    ] {
        let text = occc_tests::receivers::await_received(
            received,
            |text| {
                text.contains("\"event\":\"quarantine_started\"")
                    && text.contains("\"to\":\"compromised\"")
                    && text.contains("\"check\":\"event.exec\"")
            },
            &format!("{name} never heard of the quarantine"),
        )
        .await;
        assert!(text.contains("\"severity\":\"critical\""), "{name}: {text}");
    }

    // Isolated, not destroyed.
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "0");
    assert_eq!(gateway.inspect("{{.HostConfig.RestartPolicy.Name}}"), "no");

    // Every session ended, including the super-admin's.
    for old in [&admin_session, &ada_session] {
        let err = old.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    // Sensitive operations are locked, even for an elevated admin.
    let ada_session = sign_in(&anonymous, &mut ada, true).await;
    let locked = ada_session
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: gateway.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition, "{locked:?}");
    assert!(locked.message().contains("quarantined"));
    let otto_session = sign_in(&anonymous, &mut otto, false).await;
    let locked = otto_session
        .environment()
        .start_environment(pb::EnvironmentRequest {
            container: gateway.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition, "{locked:?}");

    // Ops see it with occcctl: status exits 1, watch streams JSON.
    let token = ada_session.session().unwrap().expose().to_owned();
    let occcctl = |args: &[&str]| {
        let mut command = std::process::Command::new(workspace_binary("occcctl"));
        command
            .args(["--dev", dir.path().to_str().unwrap()])
            .args(args)
            .env("OCCC_SESSION_TOKEN", &token);
        command
    };
    let shown = occcctl(&["integrity", "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(!shown.status.success(), "not all healthy");
    assert!(
        text.contains("COMPROMISED") && text.contains("QUARANTINED") && text.contains("event.exec"),
        "{text}"
    );
    let mut watching = occcctl(&["--json", "integrity", "watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watching.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = watching.kill();
    let _ = watching.wait();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        first["status"]["health"], "CONTAINER_HEALTH_COMPROMISED",
        "{first}"
    );

    // The evidence: stored, complete, authentic, exportable.
    let snapshot = snapshot_of(&ada_session, &quarantine.snapshot_id).await;
    let names: Vec<&str> = snapshot.artifacts.iter().map(|a| a.name.as_str()).collect();
    for expected in [
        "processes.json",
        "inspect.json",
        "image_inspect.json",
        "changes.json",
        "logs.txt",
        "events.json",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let verified = ada_session
        .integrity()
        .verify_snapshot(pb::VerifySnapshotRequest {
            snapshot_id: snapshot.snapshot_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok && verified.manifest_authentic, "{verified:?}");
    let mut export = ada_session
        .integrity()
        .export_snapshot(pb::ExportSnapshotRequest {
            snapshot_id: snapshot.snapshot_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut archive = Vec::new();
    while let Some(chunk) = export.next().await {
        archive.extend(chunk.unwrap().data);
    }
    let listing = String::from_utf8_lossy(&archive);
    assert!(listing.contains("manifest.json") && listing.contains("artifacts/events.json"));
    assert!(
        listing.contains("exec_create"),
        "the exec event is in the evidence"
    );
    assert!(
        listing.contains("sk-planted"),
        "the export carries the environment (the docs say: treat it as a secret)"
    );

    // Release: not by an operator, not by an admin, not without elevation.
    let err = release(&otto_session, &gateway.name).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = release(&ada_session, &gateway.name).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let root_session = sign_in(&anonymous, &mut root, false).await;
    let err = release(&root_session, &gateway.name).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "needs elevation");
    elevate(&root_session, &mut root).await;
    let released = release(&root_session, &gateway.name).await.unwrap();
    assert!(!released.locked);
    let status = released
        .containers
        .iter()
        .find(|c| c.container == gateway.name)
        .unwrap();
    assert!(status.quarantine.is_none());
    assert!(
        status.findings.iter().all(|f| !f.needs_acknowledgement),
        "the release closed the event findings, with its note: {status:?}"
    );
    ada_session
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: gateway.name.clone(),
        })
        .await
        .expect("unlocked again");
    daemon.terminate().await;

    let (store, _) = dir.open_store().await;
    let started = audit_rows_of_kind(&store, "quarantine_started").await;
    assert_eq!(started.len(), 1);
    // The link cut is on record either way: the links it set down, or why
    // not (without the link-cut drop-in's capabilities, or where `/proc`
    // refuses the namespace) — and the pause went on regardless.
    let links_cut = !started[0].2.contains("\\\"links_cut\\\":[]");
    assert!(
        links_cut || started[0].2.contains("links not cut"),
        "{started:?}"
    );
    assert!(
        started[0].2.contains("event.exec") && started[0].2.contains("\\\"paused\\\":true"),
        "{started:?}"
    );
    let released = audit_rows_of_kind(&store, "quarantine_released").await;
    assert!(
        released[0].2.contains("drill") && released[0].2.contains("event.exec"),
        "{released:?}"
    );
    assert_eq!(
        audit_rows_of_kind(&store, "snapshot_written").await.len(),
        1
    );
    store.close().await;
    // The environment's secret is in the sealed snapshot only: not in the
    // log (at trace), not in the database's bytes.
    let log = dir.log();
    let leaked: Vec<&str> = log.lines().filter(|l| l.contains("sk-planted")).collect();
    assert!(
        leaked.is_empty(),
        "a container secret reached the log: {leaked:?}"
    );
    // Nor in what the collectors received.
    for (name, received) in [
        ("rsyslog", rsyslog.received()),
        ("webhook", webhook.received()),
    ] {
        assert!(
            !received.contains("sk-planted"),
            "a container secret reached {name}"
        );
    }
    // Closed, the store left no WAL: every page is in the file checked.
    assert!(!dir.database().with_file_name("occcd.db-wal").exists());
    let bytes = std::fs::read(dir.database()).unwrap();
    assert!(!crate::support::contains_bytes(&bytes, b"sk-planted"));
}

#[tokio::test]
async fn a_login_being_checked_when_a_quarantine_revokes_every_session_opens_none() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "a_login_being_checked_when_a_quarantine_revokes_every_session_opens_none",
        );
    };
    if crate::auth::pam::skip_unless_root(
        "a_login_being_checked_when_a_quarantine_revokes_every_session_opens_none",
    ) {
        return;
    }
    occc_tests::os_user::ensure_login_user(
        crate::auth::pam::FINGER_USER,
        crate::auth::pam::UNIX_PASSWORD,
    );
    let sensor = occc_tests::pam_stack::held_sensor("quarantine");
    sensor.set_verdict("match");
    let gateway = TestContainer::create(&socket, "inflight", &TestContainer::hardened_flags());
    gateway.start();
    let dir = DevDir::new();
    dir.set_config(&format!(
        "{}{}",
        integrity_config(&socket, &[Watch::new(&gateway.name)]),
        sensor.config(20_000)
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, _alice, admin) =
        crate::auth::pam::linked_user(&dir, &daemon, "alice", crate::auth::pam::FINGER_USER).await;
    wait_for_status(&admin, &gateway.name, Duration::from_secs(20), |s| {
        s.health() != pb::ContainerHealth::Unknown
    })
    .await;

    // Alice's fingerprint is being checked when the container is compromised.
    let login = {
        let anonymous = anonymous.clone();
        tokio::spawn(async move {
            let person = occc_tests::pam_stack::ScriptedPerson::answering(&[]);
            anonymous.login_with_pam("alice", &person).await
        })
    };
    sensor.wait_until_held().await;
    let quarantined = watch_until(&admin, &gateway.name, Duration::from_secs(10), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["true"]);
    quarantined.await.unwrap();
    sensor.release();
    let refused = crate::auth::pam::status(login.await.unwrap().unwrap_err());
    assert_eq!(refused.code(), Code::Aborted, "{refused:?}");
    // A login that begins now is unaffected.
    let login = tokio::spawn(async move {
        let person = occc_tests::pam_stack::ScriptedPerson::answering(&[]);
        anonymous.login_with_pam("alice", &person).await
    });
    sensor.wait_until_held().await;
    sensor.release();
    login
        .await
        .unwrap()
        .expect("a login begun after the quarantine");
    daemon.terminate().await;
}
