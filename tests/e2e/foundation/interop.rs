//! Clients in other languages, as docs/clients.md shows them.

use occc_tests::{DevDir, RunningDaemon};

#[tokio::test]
async fn python_grpcio_client_reads_info_and_is_refused_without_session() {
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_client.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(dir.socket())
        .arg(nix::unistd::geteuid().as_raw().to_string())
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client failed (scripts/test installs grpcio and grpcio-tools):\n{stderr}"
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON line");
    assert_eq!(answer["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(answer["api_version"], "occc.v1");
    assert_eq!(answer["verify_chain"], "UNAUTHENTICATED");
}
