//! The TypeScript client (@grpc/grpc-js) against the Rust client, calling
//! the same daemon in alternating rounds.

use std::time::Duration;

use occc_client::ConnectOptions;
use occc_tests::load::LoadReport;

use super::{CONCURRENCY, baseline::measure_get_info, print_row};

/// What `client-sdk/typescript/dist/bench/unary.js` prints.
struct NodeRun {
    calls: u64,
    errors: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
}

impl NodeRun {
    fn parse(line: &[u8]) -> Self {
        let value: serde_json::Value =
            serde_json::from_slice(line).expect("node bench prints one JSON line");
        let number = |key: &str| {
            value[key]
                .as_f64()
                .expect("a number in the node bench output")
        };
        Self {
            calls: value["calls"].as_u64().expect("calls"),
            errors: value["errors"].as_u64().expect("errors"),
            seconds: number("seconds"),
            p50_us: number("p50_us"),
            p99_us: number("p99_us"),
        }
    }
}

/// The TypeScript client's GetInfo rate at {CONCURRENCY} calls in flight on
/// one client, beside the Rust client's, alternating rounds against the same
/// daemon. Needs the SDK built (`npm test` in scripts/test does it first).
pub async fn compare_typescript_client(
    occcd: &ConnectOptions,
    rounds: usize,
    warm_up: Duration,
    window: Duration,
) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../client-sdk/typescript/dist/bench/unary.js");
    println!(
        "\nTypeScript client (@grpc/grpc-js, one client, {CONCURRENCY} calls in flight) vs the Rust client"
    );
    if !script.exists() {
        println!(
            "  not measured: {} is not built (cd client-sdk/typescript && npm ci && npm run build)",
            script.display()
        );
        return;
    }
    let (mut rust_runs, mut node_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        rust_runs.push(measure_get_info(occcd, warm_up, window).await);
        let output = tokio::process::Command::new("node")
            .arg(&script)
            .arg(&occcd.socket_path)
            .arg(CONCURRENCY.to_string())
            .arg(warm_up.as_millis().to_string())
            .arg(window.as_millis().to_string())
            .output()
            .await
            .expect("run node");
        assert!(
            output.status.success(),
            "node bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        node_runs.push(NodeRun::parse(&output.stdout));
    }
    let rust = LoadReport::merge(rust_runs);
    let calls: u64 = node_runs.iter().map(|run| run.calls).sum();
    let seconds: f64 = node_runs.iter().map(|run| run.seconds).sum();
    let errors: u64 = node_runs.iter().map(|run| run.errors).sum();
    // Per-round percentiles, the worst round shown: rounds are not merged sample by sample.
    let p50 = node_runs.iter().map(|run| run.p50_us).fold(0.0, f64::max);
    let p99 = node_runs.iter().map(|run| run.p99_us).fold(0.0, f64::max);
    let node_rate = calls as f64 / seconds;
    print_row("Rust client GetInfo (16 clients)", &rust);
    println!(
        "{:<38} {node_rate:>10.0} {p50:>10.0} {p99:>10.0} {errors:>8}",
        "TypeScript client GetInfo"
    );
    println!(
        "ratio TypeScript/Rust client (rate): {:.2}",
        node_rate / rust.rate()
    );
    assert_eq!(
        errors, 0,
        "TypeScript client calls failed during the benchmark"
    );
}
