//! Findings of events stay open until an elevated admin acknowledges them
//! with a note — audited and kept in the history; RunChecks and a restart
//! leave them open; repeats count up in one entry.

use std::time::Duration;

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, docker_ok, say_skipped, shared_socket},
    people::{SignedIn, elevate, invite, log_in_with_recovery_code, signed_in_super_admin},
};
use tonic::Code;

use super::{Watch, container_status, integrity_config, wait_for_status};
use crate::support::audit_rows_of_kind;

fn copy_in(socket: &std::path::Path, container: &str, file: &std::path::Path) {
    docker_ok(
        socket,
        &[
            "cp",
            file.to_str().unwrap(),
            &format!("{container}:/tmp/notes.txt"),
        ],
    );
}

fn copy_in_finding(status: &pb::ContainerStatus) -> Option<&pb::Finding> {
    status
        .findings
        .iter()
        .find(|f| f.check_id == "event.copy_in")
}

async fn acknowledge(
    client: &OcccClient,
    container: &str,
    check_ids: &[&str],
    note: &str,
) -> Result<pb::IntegrityStatus, tonic::Status> {
    client
        .integrity()
        .acknowledge_findings(pb::AcknowledgeFindingsRequest {
            container: container.to_owned(),
            check_ids: check_ids.iter().map(|id| (*id).to_owned()).collect(),
            note: note.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn event_findings_stay_open_until_an_admin_acknowledges_them() {
    let Some(socket) = shared_socket() else {
        return say_skipped("event_findings_stay_open_until_an_admin_acknowledges_them");
    };
    // A writable root filesystem, so files can be copied in (docker cp).
    let mut flags = TestContainer::hardened_flags();
    flags.retain(|flag| *flag != "--read-only");
    let gateway = TestContainer::create(&socket, "ack", &flags);
    gateway.start();
    let dir = DevDir::new();
    dir.set_config(&integrity_config(&socket, &[Watch::new(&gateway.name)]));
    let mut daemon = RunningDaemon::start(&dir).await;
    let SignedIn {
        anonymous,
        session: root_session,
        ..
    } = signed_in_super_admin(&dir, &daemon).await;
    let mut ada = invite(&root_session, &anonymous, "ada", pb::UserRole::Admin).await;
    wait_for_status(&root_session, &gateway.name, Duration::from_secs(20), |s| {
        s.health() != pb::ContainerHealth::Unknown
    })
    .await;

    // A copy-in, twice: one open finding, seen twice (high: no quarantine).
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("notes.txt");
    std::fs::write(&file, "plain text\n").unwrap();
    copy_in(&socket, &gateway.name, &file);
    copy_in(&socket, &gateway.name, &file);
    let status = wait_for_status(&root_session, &gateway.name, Duration::from_secs(10), |s| {
        copy_in_finding(s).is_some_and(|f| f.occurrences == 2)
    })
    .await;
    let finding = copy_in_finding(&status).unwrap();
    assert!(finding.needs_acknowledgement, "{finding:?}");
    assert!(finding.first_observed_at_unix_ms <= finding.observed_at_unix_ms);
    assert!(status.quarantine.is_none());

    // RunChecks closes nothing.
    root_session
        .integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let status = container_status(&root_session, &gateway.name).await;
    assert_eq!(copy_in_finding(&status).map(|f| f.occurrences), Some(2));

    // Nor does a restart.
    daemon.terminate().await;
    daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let ada_session = log_in_with_recovery_code(&anonymous, &mut ada).await;
    let status = container_status(&ada_session, &gateway.name).await;
    assert_eq!(
        copy_in_finding(&status).map(|f| f.occurrences),
        Some(2),
        "{status:?}"
    );

    // Acknowledging needs re-authentication, a note, and an open event finding.
    let note = "copy-in was the on-call engineer adding notes; checked the file";
    let err = acknowledge(&ada_session, &gateway.name, &["event.copy_in"], note)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    elevate(&ada_session, &mut ada).await;
    let err = acknowledge(&ada_session, &gateway.name, &["event.copy_in"], "  ")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("note"), "{err:?}");
    let err = acknowledge(&ada_session, &gateway.name, &[], note)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = acknowledge(
        &ada_session,
        &gateway.name,
        &["runtime.writable_rootfs"],
        note,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("close by themselves"), "{err:?}");
    let err = acknowledge(
        &ada_session,
        &gateway.name,
        &["event.copy_in", "event.exec"],
        note,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("event.exec"), "{err:?}");
    let still = container_status(&ada_session, &gateway.name).await;
    assert!(
        copy_in_finding(&still).is_some(),
        "a refused request closes nothing"
    );
    let err = acknowledge(&ada_session, "no-such-container", &["event.copy_in"], note)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // Asked before: the same question after the acknowledgement must not
    // be answered from a copy of this answer (ListFindings is served from
    // memory while the history does not change).
    let before = ada_session
        .integrity()
        .list_findings(pb::ListFindingsRequest {
            container: gateway.name.clone(),
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        before
            .findings
            .iter()
            .filter(|f| f.check_id == "event.copy_in")
            .all(|f| f.acknowledgement.is_none()),
        "{before:?}"
    );
    let acknowledged = acknowledge(&ada_session, &gateway.name, &["event.copy_in"], note)
        .await
        .unwrap();
    let status = acknowledged
        .containers
        .iter()
        .find(|c| c.container == gateway.name)
        .unwrap();
    assert!(copy_in_finding(status).is_none(), "{status:?}");

    // The history says who closed it, when and why.
    let history = ada_session
        .integrity()
        .list_findings(pb::ListFindingsRequest {
            container: gateway.name.clone(),
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let copies: Vec<&pb::Finding> = history
        .findings
        .iter()
        .filter(|f| f.check_id == "event.copy_in")
        .collect();
    assert_eq!(copies.len(), 2, "{history:?}");
    for copy in copies {
        let acknowledgement = copy.acknowledgement.as_ref().expect("acknowledged");
        assert_eq!(acknowledgement.by, "ada");
        assert_eq!(acknowledgement.note, note);
    }
    daemon.terminate().await;

    // Audited: by ada, with the note and the count.
    let (store, _) = dir.open_store().await;
    let rows: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT actor_user, detail FROM audit_log WHERE kind = 'findings_acknowledged'",
    )
    .fetch_all(store.raw_pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.as_deref(), Some("ada"));
    assert!(
        rows[0].1.contains("event.copy_in")
            && rows[0].1.contains("on-call engineer")
            && rows[0].1.contains("\\\"occurrences\\\":2"),
        "{rows:?}"
    );
    assert!(
        audit_rows_of_kind(&store, "quarantine_started")
            .await
            .is_empty()
    );
}
