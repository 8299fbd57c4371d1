//! Issue #15: health that tells the truth — `grpc.health.v1` per service,
//! the integrity services NOT_SERVING while the engine is unreachable, the
//! daemon NOT_SERVING while the audit log cannot commit, and `occcctl
//! status` saying why. Transitions are awaited on the health service's own
//! watch stream (bounded by a deadline), never by sleeping.

use std::time::Duration;

use occc_client::proto_health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use occc_tests::{DevDir, RunningDaemon, docker::shared_socket, workspace_binary};
use tonic::transport::Channel;

use crate::support::audit_rows_of_kind;

const INTEGRITY: &str = "occc.v1.Integrity";

/// Waits until `service` reports `wanted` (20 s at most).
async fn until(channel: Channel, service: &str, wanted: ServingStatus) {
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(status) = watch.message().await.unwrap() {
            if status.status() == wanted {
                return;
            }
        }
        panic!("the health stream of {service:?} ended");
    })
    .await;
    assert!(seen.is_ok(), "{service:?} never reported {wanted:?}");
}

/// Waits until `System/GetInfo` gives `service` a reason containing
/// `words` (20 s at most): reasons have no stream of their own, so this
/// polls — for SQLite's real busy timeout, not for anything of occcd's.
async fn until_reason(client: &occc_client::OcccClient, service: &str, words: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = client.daemon_info().await.unwrap();
        let reason = info
            .services
            .iter()
            .find(|s| s.service == service)
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        if reason.contains(words) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service:?} never said {words:?} (last: {reason:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(channel: Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// `occcctl status` (with `--json` when `json`): exit success, output.
fn occcctl_status(dir: &DevDir, json: bool) -> (bool, String) {
    let mut args = vec!["--dev", dir.path().to_str().unwrap(), "status"];
    if json {
        args.push("--json");
    }
    let output = std::process::Command::new(workspace_binary("occcctl"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn the_integrity_services_do_not_serve_while_the_engine_is_unreachable_and_say_why() {
    let dir = DevDir::new();
    let no_engine = dir.path().join("no-engine.sock");
    dir.set_config(&format!(
        "[integrity]\ndocker_socket = {:?}\n",
        no_engine.display().to_string()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let channel = client.channel();
    // "Starting" is NOT_SERVING too: wait for the first judgement's reason.
    until_reason(&client, INTEGRITY, "the container engine is unreachable").await;
    until(channel.clone(), INTEGRITY, ServingStatus::NotServing).await;
    until(
        channel.clone(),
        "occc.v1.Environment",
        ServingStatus::NotServing,
    )
    .await;
    // The rest serves: an engine outage is not the daemon's.
    assert_eq!(status_of(channel.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        status_of(channel.clone(), "occc.v1.Auth").await,
        ServingStatus::Serving
    );

    let (ok, json) = occcctl_status(&dir, true);
    assert!(ok, "the daemon as a whole serves: {json}");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let services = status["services"].as_array().unwrap();
    let entry = |name: &str| {
        services
            .iter()
            .find(|s| s["service"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {json}"))
    };
    assert_eq!(entry("")["serving"], true);
    assert_eq!(entry(INTEGRITY)["serving"], false);
    assert_eq!(
        entry(INTEGRITY)["reason"],
        "the container engine is unreachable"
    );
    assert_eq!(entry("occc.v1.Users")["reason"], "");
    assert_eq!(services.len(), 12, "the daemon and its eleven services");
    let (_, text) = occcctl_status(&dir, false);
    assert!(
        text.contains("not serving: Integrity: the container engine is unreachable"),
        "{text}"
    );
    assert!(!text.contains("not serving: occcd"), "{text}");
    drop(daemon);

    // With an engine there, the integrity services serve.
    let Some(engine) = shared_socket() else {
        return occc_tests::docker::say_skipped(
            "the_integrity_services_do_not_serve_while_the_engine_is_unreachable_and_say_why (the engine-reachable half)",
        );
    };
    let dir = DevDir::new();
    dir.set_config(&format!(
        "[integrity]\ndocker_socket = {:?}\n",
        engine.display().to_string()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    until(
        daemon.client().await.channel(),
        INTEGRITY,
        ServingStatus::Serving,
    )
    .await;
}

#[tokio::test]
async fn the_daemon_does_not_serve_while_the_audit_log_cannot_commit() {
    let dir = DevDir::new();
    dir.set_config("[audit]\nwrite_timeout_ms = 300\n");
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let channel = client.channel();
    assert_eq!(status_of(channel.clone(), "").await, ServingStatus::Serving);

    // Another connection holds SQLite's write lock: the next audited call
    // (a refusal is audited) cannot commit.
    let (store, _) = dir.open_store().await;
    let mut blocker = store.raw_pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    assert!(client.verify_audit_chain().await.is_err());
    until(channel.clone(), "", ServingStatus::NotServing).await;
    assert_eq!(
        status_of(channel.clone(), "occc.v1.Users").await,
        ServingStatus::NotServing,
        "every service: every call is audited"
    );
    // First "not committing in time" (a commit waits longer than callers
    // do), then "cannot commit" once SQLite's busy timeout fails the batch.
    until_reason(&client, "", "cannot commit").await;
    let (ok, text) = occcctl_status(&dir, false);
    assert!(!ok, "status fails while the daemon does not serve: {text}");
    assert!(
        text.contains("not serving: occcd: the audit log cannot commit"),
        "{text}"
    );

    // The lock is given back: the entry recording the gap commits, and the
    // daemon serves again without a restart.
    sqlx::query("ROLLBACK")
        .execute(&mut *blocker)
        .await
        .unwrap();
    drop(blocker);
    until(channel.clone(), "", ServingStatus::Serving).await;
    let (ok, text) = occcctl_status(&dir, false);
    assert!(ok, "{text}");
    assert!(dir.log().contains("health changed"), "{}", dir.log());
    // What ended it: the entry that records the gap, committed.
    let gaps = audit_rows_of_kind(&store, "audit_gap").await;
    assert_eq!(gaps.len(), 1, "one gap entry");
    assert!(
        gaps[0].2.contains("since_unix_ms"),
        "the gap says since when: {}",
        gaps[0].2
    );
}
