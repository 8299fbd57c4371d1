//! The monitor holds the config to the last accepted version: occcd's own
//! writes raise nothing; an edit outside occcd is a finding with the diff
//! (critical, and a quarantine, when it weakens security); a symlink put
//! in its place is a finding too; a quarantine locks edits.

use std::time::Duration;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, say_skipped, shared_socket},
    people::signed_in_super_admin,
};
use tonic::Code;

use super::{SAMPLE, SAMPLE_SECRETS, read, write};
use crate::integrity::{
    Watch, check_ids, container_status, integrity_config, pin_and_wait_until_healthy, watch_until,
};

fn config_finding(status: &pb::ContainerStatus) -> Option<&pb::Finding> {
    status
        .findings
        .iter()
        .find(|f| f.check_id.starts_with("config."))
}

#[tokio::test]
async fn outside_edits_are_findings_with_the_diff_and_own_writes_are_not() {
    let Some(socket) = shared_socket() else {
        return say_skipped("outside_edits_are_findings_with_the_diff_and_own_writes_are_not");
    };
    let host = tempfile::tempdir().unwrap();
    let path = host.path().join("openclaw.json");
    std::fs::write(&path, SAMPLE).unwrap();
    let mount = format!("{}:/home/node/.openclaw:ro", host.path().display());
    let mut flags = TestContainer::hardened_flags();
    flags.extend(["-v", &mount]);
    let gateway = TestContainer::create(&socket, "config", &flags);
    gateway.start();
    let dir = DevDir::new();
    let toml = format!(
        "{}openclaw_config = {:?}\n",
        integrity_config(&socket, &[Watch::new(&gateway.name)]),
        path.display().to_string()
    );
    dir.set_config(&toml);
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let admin = &root.session;
    pin_and_wait_until_healthy(admin, &gateway.name).await;
    let run_checks = || async {
        admin
            .integrity()
            .run_checks(pb::RunChecksRequest {})
            .await
            .unwrap();
        container_status(admin, &gateway.name).await
    };

    // occcd's own write moves the baseline: no finding.
    let version = read(admin).await.version.clone();
    let edited = SAMPLE.replace("port: 18789", "port: 18790");
    write(admin, &version, &edited, "new port").await.unwrap();
    let status = run_checks().await;
    assert!(
        config_finding(&status).is_none(),
        "{:?}",
        check_ids(&status)
    );

    // Edited outside occcd: high, with the diff, secrets redacted.
    let outside = edited.replace("workspaceAccess: \"ro\"", "workspaceAccess: \"none\"");
    std::fs::write(&path, &outside).unwrap();
    let status = run_checks().await;
    let finding = config_finding(&status).expect("a config finding").clone();
    assert_eq!(finding.check_id, "config.changed_outside");
    assert_eq!(finding.severity(), pb::Severity::High);
    let evidence: serde_json::Value = serde_json::from_str(&finding.evidence_json).unwrap();
    let diff = evidence["diff"].as_str().unwrap();
    assert!(
        diff.contains("-      sandbox: { mode: \"non-main\", workspaceAccess: \"ro\" },"),
        "{diff}"
    );
    assert!(
        diff.contains("+      sandbox: { mode: \"non-main\", workspaceAccess: \"none\" },"),
        "{diff}"
    );
    for secret in SAMPLE_SECRETS {
        assert!(
            !finding.evidence_json.contains(secret),
            "{secret} in the evidence"
        );
    }
    assert!(status.quarantine.is_none());
    // GetConfig says so too.
    assert!(!read(admin).await.accepted);

    // Accepting it through occcd (the same text, stored) closes it.
    write(
        admin,
        &read(admin).await.version.clone(),
        &outside,
        "reviewed the outside edit",
    )
    .await
    .unwrap();
    let status = run_checks().await;
    assert!(
        config_finding(&status).is_none(),
        "{:?}",
        check_ids(&status)
    );

    // A symlink swapped in: a finding, the target unread.
    let elsewhere = host.path().join("elsewhere.json");
    std::fs::write(&elsewhere, &outside).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let status = run_checks().await;
    let finding = config_finding(&status).expect("a config finding");
    assert_eq!(finding.check_id, "config.not_regular");
    assert!(finding.summary.contains("a symlink"), "{}", finding.summary);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &outside).unwrap();

    // Weakened outside occcd: critical, so the container is quarantined,
    // and edits are locked until a super-admin releases it.
    // (The watch starts first: the quarantine ends the sessions.)
    let quarantined = watch_until(admin, &gateway.name, Duration::from_secs(20), |s| {
        s.quarantine.is_some()
    })
    .await;
    std::fs::write(
        &path,
        outside.replace("bind: \"loopback\"", "bind: \"lan\""),
    )
    .unwrap();
    let _ = admin.integrity().run_checks(pb::RunChecksRequest {}).await;
    let status = quarantined.await.unwrap();
    let finding = config_finding(&status).expect("a config finding");
    assert_eq!(finding.severity(), pb::Severity::Critical);
    assert!(
        finding.summary.contains("weakens security"),
        "{}",
        finding.summary
    );
    // The quarantine revoked sessions: sign in again to try an edit.
    let mut person = root.person.clone();
    let again = occc_tests::people::log_in(&root.anonymous, &mut person).await;
    occc_tests::people::elevate(&again, &mut person).await;
    let locked = write(&again, &read(&again).await.version, SAMPLE, "revert")
        .await
        .unwrap_err();
    assert_eq!(
        locked.code(),
        Code::FailedPrecondition,
        "{}",
        locked.message()
    );
    assert!(
        locked.message().contains("quarantined"),
        "{}",
        locked.message()
    );
}
