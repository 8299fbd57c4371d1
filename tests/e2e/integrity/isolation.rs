//! Issue #10: isolation is verified. With the engine refusing the pause
//! once and the inspect after it once, occcd retries, then reports the
//! isolation verified (and the audit log names what failed); a network
//! connected while the container is quarantined is disconnected again and
//! audited, and one unpaused behind occcd's back is paused again.

use std::time::Duration;

use occc_tests::{
    DevDir,
    docker::{docker_ok, exec_detached, say_skipped, shared_socket},
    people::log_in_with_recovery_code,
};

use super::{Watch, Watching, integrity_config, relayed_container, watch_until, watching_healthy};
use crate::support::audit_rows_of_kind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_isolation_steps_are_retried_verified_and_a_reconnected_network_is_cut_again() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "failed_isolation_steps_are_retried_verified_and_a_reconnected_network_is_cut_again",
        );
    };
    let relayed = relayed_container(&socket, "isolate");
    let (gateway, proxy) = (&relayed.gateway, &relayed.proxy);
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "1");
    let dir = DevDir::new();
    // Slow polls: after the first sweep, every inspect is the isolation's.
    dir.set_config(
        &integrity_config(proxy.path(), &[Watch::new(&gateway.name)])
            .replace("poll_interval_ms = 500", "poll_interval_ms = 60000")
            .replace("hash_interval_ms = 1000", "hash_interval_ms = 60000"),
    );
    let Watching {
        daemon,
        anonymous,
        mut root,
        session,
    } = watching_healthy(&dir, &gateway.name).await;

    // The engine refuses the pause once, then the inspect that follows it.
    let container = format!("/containers/{}/", gateway.name);
    proxy.fail("POST", &format!("{container}pause"), 1);
    proxy.fail_after(
        "GET",
        &format!("{container}json"),
        1,
        ("POST", &format!("{container}pause")),
    );
    let quarantined = watch_until(&session, &gateway.name, Duration::from_secs(20), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["true"]);
    let status = quarantined.await.unwrap();
    let quarantine = status.quarantine.unwrap();
    assert_eq!(quarantine.isolation, "verified", "{quarantine:?}");
    assert_eq!(gateway.inspect("{{.State.Paused}}"), "true");
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "0");
    assert_eq!(gateway.inspect("{{.HostConfig.RestartPolicy.Name}}"), "no");
    let faulted = proxy.faulted();
    assert_eq!(faulted.len(), 2, "{faulted:?}");

    // Someone connects a network to the quarantined container.
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let cut_again = watch_until(&session, &gateway.name, Duration::from_secs(20), |s| {
        s.findings
            .iter()
            .any(|f| f.check_id == "quarantine.network_connected")
    })
    .await;
    docker_ok(&socket, &["network", "connect", "bridge", &gateway.name]);
    let status = cut_again.await.unwrap();
    assert_eq!(
        status.quarantine.as_ref().map(|q| q.isolation.as_str()),
        Some("verified"),
        "{status:?}"
    );
    // Up to 20 s each: under the whole suite on two cores the engine's
    // event reached the monitor after more than 5 s once (stop 35).
    let mut networks = String::new();
    for _ in 0..400 {
        networks = gateway.inspect("{{len .NetworkSettings.Networks}}");
        if networks == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(networks, "0", "disconnected again");

    // Someone with the engine unpauses it: it is paused again.
    docker_ok(&socket, &["unpause", &gateway.name]);
    let mut paused = String::new();
    for _ in 0..400 {
        paused = gateway.inspect("{{.State.Paused}}");
        if paused == "true" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(paused, "true", "paused again after an unpause");

    // Its restart policy set back to one that restarts it: set to `no`
    // again. Restarted, or stopped and started: paused again. Polls are a
    // minute apart, so each undoing is the engine's event's re-check —
    // each audited with the event that asked for it (the unpause's first,
    // so the update's is a check of its own).
    wait_audited(&session, "unpause during quarantine").await;
    docker_ok(&socket, &["update", "--restart", "always", &gateway.name]);
    wait_for(gateway, "{{.HostConfig.RestartPolicy.Name}}", "no").await;
    wait_audited(&session, "update during quarantine").await;
    docker_ok(&socket, &["restart", "-t", "1", &gateway.name]);
    wait_for(
        gateway,
        "{{.State.Status}} {{.State.Paused}}",
        "paused true",
    )
    .await;
    docker_ok(&socket, &["stop", "-t", "1", &gateway.name]);
    docker_ok(&socket, &["start", &gateway.name]);
    wait_for(
        gateway,
        "{{.State.Status}} {{.State.Paused}}",
        "paused true",
    )
    .await;
    assert_eq!(gateway.inspect("{{len .NetworkSettings.Networks}}"), "0");
    // The re-check verifies (one more inspect, 50 ms on) and then audits.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    daemon.terminate().await;

    let (store, _) = dir.open_store().await;
    let started = audit_rows_of_kind(&store, "quarantine_started").await;
    assert_eq!(started.len(), 1);
    let detail = &started[0].2;
    assert!(
        detail.contains("injected") && detail.contains("\\\"verified\\\":true"),
        "the failures and the verification are on record: {detail}"
    );
    let checked = audit_rows_of_kind(&store, "isolation_checked").await;
    assert!(
        checked
            .iter()
            .any(|(_, _, detail)| detail.contains("bridge")),
        "{checked:?}"
    );
    for undoing in ["unpause", "update", "start"] {
        assert!(
            checked
                .iter()
                .any(|(_, _, detail)| detail.contains(&format!("{undoing} during quarantine"))),
            "{undoing}: {checked:?}"
        );
    }
}

/// Waits up to 20 s for the container's `format` to read `expected`:
/// under the whole suite on two cores the engine's event reached the
/// monitor after more than 5 s once (stop 35).
async fn wait_for(container: &occc_tests::docker::TestContainer, format: &str, expected: &str) {
    let mut read = String::new();
    for _ in 0..400 {
        read = container.inspect(format);
        if read == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read, expected, "{format}");
}

/// A container on another container's network namespace: nothing the
/// engine can disconnect, so its quarantine is never reported isolated —
/// it says why and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_sharing_another_network_namespace_is_never_reported_isolated() {
    use occc_tests::docker::TestContainer;
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "a_container_sharing_another_network_namespace_is_never_reported_isolated",
        );
    };
    let owner = TestContainer::create(&socket, "netowner", &TestContainer::hardened_flags());
    owner.start();
    let mode = format!("container:{}", owner.name); // the engine keeps its id
    let mut flags: Vec<&str> = TestContainer::hardened_flags();
    flags.extend(["--network", &mode]);
    let gateway = TestContainer::create(&socket, "netshare", &flags);
    gateway.start();
    let dir = DevDir::new();
    dir.set_config(&integrity_config(&socket, &[Watch::new(&gateway.name)]));
    let Watching {
        daemon,
        anonymous,
        mut root,
        session,
    } = watching_healthy(&dir, &gateway.name).await;
    let quarantined = watch_until(&session, &gateway.name, Duration::from_secs(60), |s| {
        s.quarantine.is_some()
    })
    .await;
    exec_detached(&socket, &gateway.name, &["true"]);
    let first = quarantined.await.unwrap().quarantine.unwrap();
    assert!(first.isolation.starts_with("incomplete"), "{first:?}");
    // Polls later (it is re-checked at each), still not isolated.
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let later = watch_until(&session, &gateway.name, Duration::from_secs(30), |s| {
        s.quarantine
            .as_ref()
            .is_some_and(|q| q.isolation.contains("shares the"))
    })
    .await
    .await
    .unwrap()
    .quarantine
    .unwrap();
    assert!(
        later.isolation.starts_with("incomplete")
            && later.isolation.contains("shares the container:")
            && later
                .isolation
                .contains("network namespace (stop it to isolate it)"),
        "{later:?}"
    );
    daemon.terminate().await;
}

/// Waits up to 20 s for an `isolation_checked` entry whose detail holds
/// `why`.
async fn wait_audited(session: &occc_client::OcccClient, why: &str) {
    for _ in 0..400 {
        let page = session
            .audit()
            .list_audit_entries(occc_client::proto::ListAuditEntriesRequest {
                kind: "isolation_checked".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if page
            .entries
            .iter()
            .any(|entry| entry.detail_json.contains(why))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no isolation_checked entry for {why}");
}
