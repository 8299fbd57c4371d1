//! Issue #15: Prometheus metrics on an opt-in loopback listener — calls by
//! method and code with latency, audit entries by kind (logins, refusals),
//! sessions by role, each service's health — checked by Debian's
//! `promtool check metrics`, with no secret or username in them.

use std::{net::TcpListener as StdListener, process::Stdio};

use occc_tests::{DevDir, RunningDaemon, people::signed_in_super_admin};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.1: (status line, body).
async fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
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
    dir.set_config(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let daemon = RunningDaemon::start(&dir).await;
    let admin = signed_in_super_admin(&dir, &daemon).await;
    // One refused call (no session).
    assert!(admin.anonymous.verify_audit_chain().await.is_err());

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
        "occcd_audit_commit_seconds_count ",
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
