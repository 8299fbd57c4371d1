//! Issue #15: Prometheus metrics on an opt-in loopback listener — calls by
//! method and code with latency, audit entries by kind (logins, refusals),
//! sessions by role, each service's health — checked by Debian's
//! `promtool check metrics`, with no secret or username in them; a token
//! and the `Host` header guard it, and a taken port never keeps occcd from
//! starting.

use std::{net::TcpListener as StdListener, process::Stdio};

use occc_tests::{
    DevDir, RunningDaemon, people::signed_in_super_admin, receivers::WebhookReceiver,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port` (occcd binds its metrics beside
/// its server, and again every 2 s while the port is taken): 15 s at most.
pub(crate) async fn until_listening(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `GET path` over HTTP/1.1 with `Host: 127.0.0.1:<port>`: (status line, body).
pub(crate) async fn get(port: u16, path: &str) -> (String, String) {
    get_with(port, path, &format!("Host: 127.0.0.1:{port}\r\n")).await
}

/// `GET path` with `headers` (each ending in CRLF): (status line, body).
async fn get_with(port: u16, path: &str, headers: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test]
async fn prometheus_reads_calls_logins_sessions_and_health_and_promtool_accepts_them() {
    let dir = DevDir::new();
    let port = free_port();
    // With an event output, so its families have samples for promtool too.
    let secret_file = dir.path().join("webhook.secret");
    let receiver = WebhookReceiver::start(&"m".repeat(40), &secret_file);
    dir.set_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        receiver.url,
        secret_file.display().to_string()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    until_listening(port).await;
    let admin = signed_in_super_admin(&dir, &daemon).await;
    // One refused call (no session), and one stream refused for want of a
    // place (each refused stream is counted, not logged).
    assert!(admin.anonymous.verify_audit_chain().await.is_err());
    let mut watches = Vec::new();
    let refused = loop {
        match admin
            .session
            .integrity()
            .watch_integrity(occc_client::proto::WatchIntegrityRequest {})
            .await
        {
            Ok(watch) => watches.push(watch),
            Err(status) => break status,
        }
        assert!(watches.len() <= occcd::service::STREAMS_PER_UID, "no limit");
    };
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );

    let (status, body) = get(port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    for expected in [
        "occcd_up 1",
        "occcd_service_serving{service=\"\"} 1",
        "occcd_sessions{role=\"super-admin\"} 1",
        "occcd_sessions{role=\"viewer\"} 0",
        "occcd_audit_entries_total{kind=\"login_succeeded\"} 1",
        "occcd_audit_entries_total{kind=\"call_refused\"} 1",
        "occcd_audit_lost_total 0",
        "occcd_rpc_duration_seconds_count{method=\"/occc.v1.Audit/VerifyChain\",code=\"UNAUTHENTICATED\"} 1",
        "occcd_rpc_duration_seconds_count{method=\"/occc.v1.Integrity/WatchIntegrity\",code=\"RESOURCE_EXHAUSTED\"} 1",
        "occcd_audit_commit_seconds_count ",
        "occcd_events_behind_entries{output=\"webhook\"} ",
        "occcd_events_delivered_total{output=\"webhook\"} ",
        "# TYPE occcd_check_duration_seconds histogram",
        "# TYPE occcd_quarantine_isolation_seconds histogram",
    ] {
        assert!(body.contains(expected), "{expected} missing:\n{body}");
    }
    assert!(
        body.contains("occcd_rpc_duration_seconds_bucket{method=\"/occc.v1.Auth/Login\",code=\"OK\",le=\"+Inf\"}"),
        "{body}"
    );
    // Counts and fixed labels only: not even the username.
    assert!(!body.contains("root"), "{body}");

    // Debian's promtool accepts the exposition as it is.
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/lib.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .await
        .unwrap();
    let checked = promtool.wait_with_output().await.unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The Grafana dashboard shipped in packaging/ asks only for families
    // this exposition has.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/grafana/occcd-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "a panel per family");
    for panel in panels {
        let expr = panel["targets"][0]["expr"].as_str().unwrap();
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("occcd_"));
        for name in names {
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                body.contains(&format!("# TYPE {family} ")),
                "panel {:?} asks for {name}, which occcd does not expose",
                panel["title"]
            );
        }
    }

    // Nothing else is served there.
    let (status, _) = get(port, "/").await;
    assert!(status.contains("404"), "{status}");
}

#[tokio::test]
async fn a_metrics_address_off_loopback_stops_start_up_with_the_reason() {
    let dir = DevDir::new();
    dir.set_config("[metrics]\nlisten = \"0.0.0.0:9464\"\n");
    let (status, output) = dir.run_occcd(&["serve"]).await;
    assert!(!status.success());
    assert!(output.contains("not a loopback address"), "{output}");
}

#[tokio::test]
async fn a_token_and_the_host_header_guard_the_metrics() {
    let dir = DevDir::new();
    let port = free_port();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "s3cret-scrape-token\n").unwrap();
    dir.set_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = {:?}\n",
        token_file.display().to_string()
    ));
    let _daemon = RunningDaemon::start(&dir).await;
    until_listening(port).await;
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let (status, _) = get_with(port, "/metrics", &host).await;
    assert!(status.contains("401"), "no token: {status}");
    let wrong = format!("{host}Authorization: Bearer s3cret-scrape-tokem\r\n");
    let (status, _) = get_with(port, "/metrics", &wrong).await;
    assert!(status.contains("401"), "wrong token: {status}");
    let right = format!("{host}Authorization: Bearer s3cret-scrape-token\r\n");
    let (status, body) = get_with(port, "/metrics", &right).await;
    assert!(
        status.contains("200") && body.contains("occcd_up 1"),
        "{status}"
    );
    // A page that rebound a name of its own to 127.0.0.1 sends its Host.
    let rebound = "Host: evil.example:9464\r\nAuthorization: Bearer s3cret-scrape-token\r\n";
    let (status, _) = get_with(port, "/metrics", rebound).await;
    assert!(status.contains("403"), "foreign Host: {status}");
    assert!(
        !dir.log().contains("s3cret-scrape-token"),
        "the token is never logged"
    );
}

#[tokio::test]
async fn a_taken_metrics_port_never_keeps_occcd_from_starting() {
    let dir = DevDir::new();
    let squatter = StdListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    dir.set_config(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let daemon = RunningDaemon::start(&dir).await;
    daemon
        .client()
        .await
        .health()
        .await
        .expect("occcd serves its socket");
    // The listener starts beside the server: its complaint may come a moment later.
    let said = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.log().contains("metrics not served yet") {
        assert!(std::time::Instant::now() < said, "{}", dir.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Once the port is free, occcd takes it (it tries every 2 s).
    drop(squatter);
    until_listening(port).await;
    let (status, body) = get(port, "/metrics").await;
    assert!(
        status.contains("200") && body.contains("occcd_up 1"),
        "{status}"
    );
}
