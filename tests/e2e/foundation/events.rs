//! Issue #15: security events out, to real receivers — Debian's rsyslogd
//! (RFC 5424 over TCP, and over TLS through its gtls driver) and a webhook
//! receiver that verifies signatures as a team's own would. An outage of the
//! receiver, even across a daemon restart, loses nothing: every audit entry
//! arrives at least once, with its sequence number as the id to dedupe by.

use std::collections::BTreeSet;

use occc_tests::{
    DevDir, RunningDaemon,
    receivers::{
        Rsyslog, TlsFiles, WebhookReceiver, await_received, record_ids, try_await_received,
    },
};

/// Waits until the webhook received `count` refusals; on failure says what
/// it got and what the daemon logged about its outputs.
async fn await_webhook_refusals(
    dir: &DevDir,
    receiver: &WebhookReceiver,
    count: usize,
    what: &str,
) {
    let got = try_await_received(
        || receiver.received(),
        |text| text.matches("\"event\":\"call_refused\"").count() >= count,
    )
    .await;
    if let Err(text) = got {
        let log = dir.log();
        let output_lines: Vec<&str> = log
            .lines()
            .filter(|line| {
                line.contains("output") || line.contains("audit") || line.contains("ERROR")
            })
            .collect();
        panic!(
            "{what}; received so far:\n{text}\nrefused: {}\ndaemon log about outputs:\n{}",
            receiver.refused(),
            output_lines.join("\n")
        );
    }
}

/// Audited refusals: `count` calls without a session (each one entry).
async fn refused_calls(daemon: &RunningDaemon, count: usize) {
    let client = daemon.client().await;
    for _ in 0..count {
        assert!(client.verify_audit_chain().await.is_err());
    }
}

/// Every audit entry's sequence number, read from the store (daemon stopped).
async fn all_sequences(dir: &DevDir) -> BTreeSet<u64> {
    let (store, _) = dir.open_store().await;
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT sequence FROM audit_log ORDER BY sequence")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    store.close().await;
    rows.into_iter().map(|(s,)| s as u64).collect()
}

fn syslog_config(port: u16, extra: &str) -> String {
    format!(
        "[events]\nretry_max_secs = 1\n[events.syslog]\naddress = \"127.0.0.1:{port}\"\n{extra}"
    )
}

#[tokio::test]
async fn syslog_gets_every_entry_across_an_outage_and_a_restart() {
    let mut rsyslog = Rsyslog::start(None);
    let dir = DevDir::new();
    dir.set_config(&syslog_config(rsyslog.port, ""));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 3).await;
    let received = await_received(
        || rsyslog.received(),
        |text| text.matches("|call_refused|").count() >= 3,
        "rsyslog never got the three refusals",
    )
    .await;
    // rsyslog parsed it as RFC 5424: version 1, the event as MSGID, our
    // structured data, and the record as JSON after the BOM.
    let line = received
        .lines()
        .find(|l| l.contains("|call_refused|"))
        .unwrap();
    assert!(
        line.starts_with("1|call_refused|[occc@32473 id=\""),
        "{line}"
    );
    assert!(
        line.contains("severity=\"warning\" category=\"call_refused\""),
        "{line}"
    );
    let json = line.rsplit('\u{feff}').next().unwrap();
    let record: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(record["event"], "call_refused");
    assert_eq!(
        record["actor_uid"],
        i64::from(nix::unistd::geteuid().as_raw())
    );
    assert!(
        record["fields"]["rpc"]
            .as_str()
            .unwrap()
            .contains("VerifyChain")
    );

    // The collector goes down: calls are answered all the same.
    rsyslog.stop();
    refused_calls(&daemon, 20).await;
    // The daemon restarts while it is still down (2 s grace, then it stops).
    let stopped = daemon.terminate().await;
    assert!(stopped.success());
    rsyslog.resume();
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 2).await;
    assert!(daemon.terminate().await.success());

    let expected = all_sequences(&dir).await;
    let received = await_received(
        || rsyslog.received(),
        |text| record_ids(text).keys().copied().collect::<BTreeSet<_>>() == expected,
        "not every audit entry reached rsyslog",
    )
    .await;
    let log = dir.log();
    assert!(log.contains("event delivery failed; retrying"), "{log}");
    let ids = record_ids(&received);
    println!(
        "syslog across an outage and a restart: {} entries, {} received, {} twice or more",
        expected.len(),
        ids.values().sum::<usize>(),
        ids.values().filter(|n| **n > 1).count()
    );
}

#[tokio::test]
async fn syslog_over_tls_reaches_a_collector_it_trusts_and_no_other() {
    let certs = tempfile::tempdir().unwrap();
    let files = TlsFiles::generate(certs.path());
    let rsyslog = Rsyslog::start(Some(&files));
    let dir = DevDir::new();
    let tls = format!(
        "tls = true\nca_file = {:?}\nserver_name = \"localhost\"\n",
        files.ca.display().to_string()
    );
    dir.set_config(&syslog_config(rsyslog.port, &tls));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 1).await;
    await_received(
        || rsyslog.received(),
        |text| text.contains("|call_refused|"),
        "rsyslog (TLS) never got the refusal",
    )
    .await;
    drop(daemon);

    // A daemon trusting another CA sends nothing and says why.
    let other = tempfile::tempdir().unwrap();
    let other_ca = TlsFiles::generate(other.path()).ca;
    let dir = DevDir::new();
    let tls = format!(
        "tls = true\nca_file = {:?}\nserver_name = \"localhost\"\n",
        other_ca.display().to_string()
    );
    dir.set_config(&syslog_config(rsyslog.port, &tls));
    let before = rsyslog.received().lines().count();
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 1).await;
    await_received(
        || dir.log(),
        |log| log.contains("event delivery failed") && log.contains("TLS"),
        "the untrusted collector's refusal was not logged",
    )
    .await;
    assert_eq!(
        rsyslog.received().lines().count(),
        before,
        "sent to an untrusted collector"
    );
    drop(daemon);

    // Trusted CA, but the certificate does not name the collector asked for.
    let dir = DevDir::new();
    let tls = format!(
        "tls = true\nca_file = {:?}\nserver_name = \"collector.example\"\n",
        files.ca.display().to_string()
    );
    dir.set_config(&syslog_config(rsyslog.port, &tls));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 1).await;
    await_received(
        || dir.log(),
        |log| log.contains("event delivery failed") && log.contains("not valid for name"),
        "a certificate for another name was not refused",
    )
    .await;
    assert_eq!(
        rsyslog.received().lines().count(),
        before,
        "sent to a misnamed collector"
    );
}

#[tokio::test]
async fn a_hung_collector_costs_one_timeout_per_try_and_never_a_call() {
    // Accepts connections and never reads or answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    let dir = DevDir::new();
    dir.set_config(&format!(
        "[events]\nretry_max_secs = 1\ntimeout_secs = 1\n[events.syslog]\naddress = \"127.0.0.1:{port}\"\n"
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let started = std::time::Instant::now();
    refused_calls(&daemon, 5).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "calls waited on the collector"
    );
    await_received(
        || dir.log(),
        |log| log.contains("no answer within 1 s"),
        "the hung collector was not timed out",
    )
    .await;
    // Shutdown gives outputs 2 s, then ends them.
    let stopping = std::time::Instant::now();
    assert!(daemon.terminate().await.success());
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    drop(hung);
}

#[tokio::test]
async fn an_output_too_far_behind_skips_ahead_and_says_which_entries() {
    let dir = DevDir::new();
    let secret_file = dir.path().join("webhook.secret");
    let receiver = WebhookReceiver::start(&"k".repeat(40), &secret_file);
    dir.set_config(&format!(
        "[events]\nretry_max_secs = 1\nbatch = 5\nmax_backlog = 10\n[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        receiver.url,
        secret_file.display().to_string()
    ));
    receiver.set_down(true);
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 30).await;
    receiver.set_down(false);
    let received = await_received(
        || receiver.received(),
        |text| text.contains("\"event\":\"events_skipped\""),
        "no events_skipped record",
    )
    .await;
    let skipped = received
        .split("\"event\":\"events_skipped\"")
        .nth(1)
        .unwrap();
    assert!(skipped.contains("\"output\":\"webhook\""), "{skipped}");
    assert!(skipped.contains("\"first\":1"), "from the start: {skipped}");
    assert!(daemon.terminate().await.success());
    // What was not skipped arrived, up to the last entry.
    let expected = all_sequences(&dir).await;
    let last = *expected.last().unwrap();
    let received = await_received(
        || receiver.received(),
        |text| record_ids(text).contains_key(&last),
        "the entries after the skip did not all arrive",
    )
    .await;
    let ids = record_ids(&received);
    let first_after = *ids.keys().next().unwrap();
    assert!(first_after > 1, "entries were skipped");
    assert!(
        (first_after..=last).all(|id| ids.contains_key(&id)),
        "a gap after the skip"
    );
}

#[tokio::test]
async fn the_webhook_gets_signed_batches_and_an_outage_loses_nothing() {
    let dir = DevDir::new();
    let secret_file = dir.path().join("webhook.secret");
    let receiver = WebhookReceiver::start(&"s3cr3t-".repeat(6), &secret_file);
    dir.set_config(&format!(
        "[events]\nretry_max_secs = 1\n[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        receiver.url,
        secret_file.display().to_string()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 2).await;
    await_webhook_refusals(&dir, &receiver, 2, "the webhook never got the refusals").await;
    // A receiver that answers and closes at once (HTTP/1.0 style) is
    // answered all the same: its 2xx counts.
    receiver.set_closing(true);
    refused_calls(&daemon, 2).await;
    await_webhook_refusals(
        &dir,
        &receiver,
        4,
        "a 204 with Connection: close was not taken as delivered",
    )
    .await;
    receiver.set_closing(false);

    receiver.set_down(true);
    refused_calls(&daemon, 30).await;
    await_received(
        || dir.log(),
        |log| log.contains("the receiver answered 503"),
        "the outage was not noticed",
    )
    .await;
    receiver.set_down(false);
    refused_calls(&daemon, 1).await;
    assert!(daemon.terminate().await.success());

    let expected = all_sequences(&dir).await;
    let received = await_received(
        || receiver.received(),
        |text| record_ids(text).keys().copied().collect::<BTreeSet<_>>() == expected,
        "not every audit entry reached the webhook",
    )
    .await;
    assert_eq!(
        receiver.refused(),
        "",
        "a delivery failed signature verification"
    );
    let batch: serde_json::Value = serde_json::from_str(received.lines().next().unwrap()).unwrap();
    assert_eq!(
        batch["records"][0]["id"], 1,
        "a new output starts at the log's head"
    );
    assert!(batch["records"][0]["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn an_unusable_events_config_stops_start_up_with_the_reason() {
    let dir = DevDir::new();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, "too short").unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let foreign_secret = dir.path().join("foreign.secret");
    std::fs::write(&foreign_secret, "k".repeat(40)).unwrap();
    std::fs::set_permissions(
        &foreign_secret,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut cases = Vec::new();
    if occc_tests::os_user::is_root() {
        // Mode 0600 and long enough, but someone else's: they could change it.
        nix::unistd::chown(&foreign_secret, Some(65534.into()), None).unwrap();
        cases.push((
            format!(
                "[events.webhook]\nurl = \"http://127.0.0.1:9/\"\nsecret_file = {:?}\n",
                foreign_secret.display().to_string()
            ),
            "belongs to uid 65534: it must be root's or occcd's",
        ));
    } else {
        occc_tests::skip::unavailable(
            "an_unusable_events_config_stops_start_up_with_the_reason (a secret file of another uid)",
            "root (it gives a file to another uid)",
        );
    }
    for (config, reason) in cases.into_iter().chain([
        (
            "[events.webhook]\nurl = \"http://127.0.0.1:9/\"\n".to_owned(),
            "secret_file is required",
        ),
        (
            format!(
                "[events.webhook]\nurl = \"http://127.0.0.1:9/\"\nsecret_file = {:?}\n",
                secret_file.display().to_string()
            ),
            "readable by others",
        ),
        (
            "[events.webhook]\nurl = \"https://user:pw@alerts.example/\"\nsecret_file = \"/x\"\n"
                .to_owned(),
            "user or password in the URL",
        ),
        (
            "[events.syslog]\naddress = \"collector\"\n".to_owned(),
            "is not host:port",
        ),
    ]) {
        dir.set_config(&config);
        let (status, output) = dir.run_occcd(&["serve"]).await;
        assert!(!status.success(), "{config}");
        assert!(output.contains(reason), "{config}: {output}");
    }
}

#[tokio::test]
async fn a_new_receiver_gets_what_comes_next_not_the_past() {
    let dir = DevDir::new();
    let secret_file = dir.path().join("webhook.secret");
    let first = WebhookReceiver::start(&"f".repeat(40), &secret_file);
    let config = |url: &str| {
        format!(
            "[events]\nretry_max_secs = 1\n[events.webhook]\nurl = {url:?}\nsecret_file = {:?}\n",
            secret_file.display().to_string()
        )
    };
    dir.set_config(&config(&first.url));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 5).await;
    assert!(daemon.terminate().await.success());
    let before = *all_sequences(&dir).await.last().unwrap();

    // Pointed elsewhere: the old cursor is not the new receiver's.
    let second = WebhookReceiver::start(&"f".repeat(40), &secret_file);
    dir.set_config(&config(&second.url));
    let daemon = RunningDaemon::start(&dir).await;
    refused_calls(&daemon, 1).await;
    let received = await_received(
        || second.received(),
        |text| text.contains("\"event\":\"call_refused\""),
        "the new receiver got nothing",
    )
    .await;
    let ids = record_ids(&received);
    assert!(
        *ids.keys().next().unwrap() > before,
        "the past was replayed: {ids:?}"
    );
    drop(daemon);
}
