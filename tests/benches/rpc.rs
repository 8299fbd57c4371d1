//! Unary RPCs through occcd's full stack — anonymous (socket, peer
//! credentials, gate) and authenticated (plus session token and RBAC check) —
//! against a bare tonic server on a Unix socket, at the same concurrency, in
//! the same run, in alternating rounds.
//!
//! Then every read RPC a frontend polls, one row each, against the same
//! baseline (issue #17's goal: rate >= 0.5x baseline, p99 <= 1 ms at 16
//! clients); rows that miss it are marked.
//!
//! `cargo bench -p occc-tests --bench rpc`; `OCCC_BENCH_QUICK=1` for a short
//! smoke run. Needs `cargo build --release --bins` first (scripts/bench does both).

use std::{sync::Arc, time::Duration};

use occc_client::{ConnectOptions, OcccClient, SessionToken, proto as pb};
use occc_proto::v1::{DaemonInfo, GetInfoRequest, system_client::SystemClient, system_server};
use occc_tests::{
    DevDir, RunningDaemon,
    load::{LoadReport, run_load},
    people::{bootstrap_super_admin, log_in},
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

const CONCURRENCY: usize = 16;

/// The baseline: tonic with nothing in front of the handler.
struct BareSystem;

#[tonic::async_trait]
impl system_server::System for BareSystem {
    async fn get_info(
        &self,
        _request: Request<GetInfoRequest>,
    ) -> Result<Response<DaemonInfo>, Status> {
        Ok(Response::new(DaemonInfo {
            version: "bare".into(),
            uptime_seconds: 0,
            started_at_unix_ms: 0,
            api_version: "occc.v1".into(),
            // As many entries as occcd's answer carries (the daemon and
            // its ten services), so both answers are the same size.
            services: (0..11)
                .map(|n| occc_client::proto::ServiceHealth {
                    service: format!("occc.v1.Service{n}"),
                    serving: true,
                    reason: String::new(),
                })
                .collect(),
        }))
    }
}

/// Serves the baseline on its own 2-worker runtime, like the daemon's.
fn start_bare_server(dir: &DevDir) -> ConnectOptions {
    let socket = dir.path().join("bare.sock");
    let path = socket.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("baseline runtime");
        runtime.block_on(async move {
            let listener = UnixListener::bind(&path).expect("bind baseline socket");
            tonic::transport::Server::builder()
                .add_service(system_server::SystemServer::new(BareSystem))
                .serve_with_incoming(UnixListenerStream::new(listener))
                .await
                .expect("baseline server");
        });
    });
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    ConnectOptions {
        socket_path: socket,
        expected_owner_uid: nix::unistd::geteuid().as_raw(),
    }
}

async fn measure_get_info(
    options: &ConnectOptions,
    warm_up: Duration,
    window: Duration,
) -> LoadReport {
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(Arc::new(
            OcccClient::connect(options).await.expect("connect"),
        ));
    }
    run_load(CONCURRENCY, warm_up, window, |index| {
        let client = SystemClient::new(clients[index].channel());
        move || {
            let mut client = client.clone();
            async move { client.get_info(GetInfoRequest {}).await.is_ok() }
        }
    })
    .await
}

/// The read RPCs a frontend polls.
const READS: [&str; 12] = [
    "Auth/WhoAmI",
    "Users/ListUsers",
    "Users/ListActiveSessions",
    "Users/ListAllSessions",
    "Integrity/ListFindings",
    "Integrity/GetIntegrityStatus",
    "Integrity/ListSnapshots",
    "Skills/ListSkills",
    "Skills/GetSkill",
    "Audit/ListAuditEntries",
    "Config/GetConfig",
    "Config/ListConfigVersions",
];

/// The config read by the `Config/*` rows.
const OPENCLAW_SAMPLE: &str = r#"// OpenClaw gateway
{
  gateway: {
    port: 18789,
    bind: "loopback",
    auth: { mode: "token", token: "gw_tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0" },
    controlUi: { allowInsecureAuth: false },
  },
  agents: {
    defaults: {
      workspace: "~/.openclaw/workspace",
      model: { primary: "anthropic/claude-sonnet-4-5" },
      sandbox: { mode: "non-main", workspaceAccess: "ro", docker: { binds: [] } },
    },
  },
  channels: {
    telegram: { botToken: "${TELEGRAM_BOT_TOKEN}", dmPolicy: "pairing", groupPolicy: "allowlist" },
    whatsapp: { dmPolicy: "allowlist", allowFrom: ["+15555550123"] },
  },
  models: { providers: { openai: { apiKey: "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6" } } },
  tools: {
    exec: { host: "sandbox", security: "allowlist", ask: "on-miss" },
    elevated: { enabled: false },
  },
  logging: { level: "info", redactSensitive: "tools" },
  plugins: { enabled: true, allow: ["voice-call"] },
  session: { dmScope: "per-channel-peer" },
}
"#;

/// The tree hash of the skill submitted for `Skills/GetSkill`.
static SKILL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Submits the fixture skill `pure-notes` so the skill reads have a row.
async fn submit_fixture_skill(session: &OcccClient) {
    let folder =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/skills/pure-notes");
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_dir_all("pure-notes", folder)
        .expect("tar the fixture");
    let archive = builder.into_inner().expect("tar");
    let chunk = pb::SkillArchiveChunk {
        format: pb::ArchiveFormat::Tar as i32,
        data: archive,
    };
    let version = session
        .skills()
        .submit_skill(tokio_stream::iter([chunk]))
        .await
        .expect("submit the fixture skill")
        .into_inner();
    let _ = SKILL.set(version.tree_hash);
}

/// One call of read RPC `name` on `client`; true if it answered OK.
async fn call_read(client: &OcccClient, name: &str) -> bool {
    match name {
        "Auth/WhoAmI" => client.auth().who_am_i(pb::WhoAmIRequest {}).await.is_ok(),
        "Users/ListUsers" => client
            .users()
            .list_users(pb::ListUsersRequest::default())
            .await
            .is_ok(),
        "Users/ListActiveSessions" => client
            .users()
            .list_active_sessions(pb::ListActiveSessionsRequest {})
            .await
            .is_ok(),
        "Users/ListAllSessions" => client
            .users()
            .list_all_sessions(pb::ListAllSessionsRequest {})
            .await
            .is_ok(),
        "Integrity/ListFindings" => client
            .integrity()
            .list_findings(pb::ListFindingsRequest::default())
            .await
            .is_ok(),
        "Integrity/GetIntegrityStatus" => client
            .integrity()
            .get_integrity_status(pb::GetIntegrityStatusRequest {})
            .await
            .is_ok(),
        "Integrity/ListSnapshots" => client
            .integrity()
            .list_snapshots(pb::ListSnapshotsRequest::default())
            .await
            .is_ok(),
        "Skills/ListSkills" => client
            .skills()
            .list_skills(pb::ListSkillsRequest::default())
            .await
            .is_ok(),
        "Skills/GetSkill" => client
            .skills()
            .get_skill(pb::SkillRef {
                tree_hash: SKILL.get().cloned().unwrap_or_default(),
            })
            .await
            .is_ok(),
        "Audit/ListAuditEntries" => client
            .audit()
            .list_audit_entries(pb::ListAuditEntriesRequest::default())
            .await
            .is_ok(),
        "Config/GetConfig" => client
            .config()
            .get_config(pb::GetConfigRequest::default())
            .await
            .is_ok(),
        "Config/ListConfigVersions" => client
            .config()
            .list_config_versions(pb::ListConfigVersionsRequest::default())
            .await
            .is_ok(),
        _ => false,
    }
}

/// Read RPC `name` with a session, from [`CONCURRENCY`] clients.
async fn measure_read(
    options: &ConnectOptions,
    token: &SessionToken,
    name: &'static str,
    warm_up: Duration,
    window: Duration,
) -> LoadReport {
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let client = OcccClient::connect(options).await.expect("connect");
        clients.push(Arc::new(client.with_session(token.clone())));
    }
    run_load(CONCURRENCY, warm_up, window, |index| {
        let client = Arc::clone(&clients[index]);
        move || {
            let client = Arc::clone(&client);
            async move { call_read(&client, name).await }
        }
    })
    .await
}

fn print_row(name: &str, report: &LoadReport) {
    println!(
        "{name:<38} {:>10.0} {:>10.0} {:>10.0} {:>8}",
        report.rate(),
        report.percentile(0.50).as_secs_f64() * 1e6,
        report.percentile(0.99).as_secs_f64() * 1e6,
        report.errors
    );
}

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
async fn compare_typescript_client(
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

fn main() {
    let quick = std::env::var_os("OCCC_BENCH_QUICK").is_some();
    // Rounds alternate baseline and occcd, so drift on a noisy machine hits both.
    let (warm_up, window, rounds) = if quick {
        (Duration::from_millis(200), Duration::from_millis(500), 2)
    } else {
        (Duration::from_millis(500), Duration::from_secs(2), 5)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let dir = DevDir::new();
        let bare = start_bare_server(&dir);
        // An OpenClaw config of a realistic size (about 1.5 KiB) to read.
        let openclaw = dir.path().join("openclaw.json");
        std::fs::write(&openclaw, OPENCLAW_SAMPLE).expect("write openclaw.json");
        dir.set_config(&format!(
            "[[integrity.containers]]\nname = \"openclaw-gateway\"\nopenclaw_config = {:?}\n",
            openclaw.display().to_string()
        ));
        let daemon = RunningDaemon::start(&dir).await;
        let occcd = ConnectOptions::dev(dir.path());

        println!(
            "unary RPC over a Unix socket, {CONCURRENCY} concurrent clients, \
             {rounds} alternating rounds of {window:?} per target"
        );
        let anonymous = OcccClient::connect(&occcd).await.expect("connect");
        let mut root = bootstrap_super_admin(&dir, &anonymous, "bench").await;
        let session = log_in(&anonymous, &mut root).await;
        let token = session.session().expect("session").clone();
        submit_fixture_skill(&session).await;
        let (mut baseline_runs, mut full_runs, mut authed_runs) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            baseline_runs.push(measure_get_info(&bare, warm_up, window).await);
            full_runs.push(measure_get_info(&occcd, warm_up, window).await);
            authed_runs.push(
                measure_read(&occcd, &token, "Users/ListActiveSessions", warm_up, window).await,
            );
        }
        let baseline = LoadReport::merge(baseline_runs);
        let full = LoadReport::merge(full_runs);
        let authed = LoadReport::merge(authed_runs);
        println!(
            "{:<38} {:>10} {:>10} {:>10} {:>8}",
            "target", "req/s", "p50 µs", "p99 µs", "errors"
        );
        print_row("bare tonic (baseline)", &baseline);
        print_row("occcd GetInfo (anonymous)", &full);
        print_row("occcd ListActiveSessions (authn+RBAC)", &authed);
        println!(
            "ratio occcd/baseline (rate): {:.2}",
            full.rate() / baseline.rate()
        );
        println!(
            "ratio authenticated/baseline (rate): {:.2}   (goal >= 0.90; p99 goal <= 1000 µs)",
            authed.rate() / baseline.rate()
        );
        assert_eq!(
            full.errors + baseline.errors + authed.errors,
            0,
            "calls failed during the benchmark"
        );

        compare_typescript_client(&occcd, rounds, warm_up, window).await;

        println!(
            "\nread RPCs a frontend polls ({CONCURRENCY} clients; goal: rate >= 0.50x baseline, p99 <= 1000 µs)"
        );
        println!(
            "{:<38} {:>10} {:>10} {:>10} {:>8} {:>7} {:>13}",
            "rpc", "req/s", "p50 µs", "p99 µs", "errors", "ratio", "base p99 µs"
        );
        for name in READS {
            let (mut baseline_runs, mut read_runs) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                baseline_runs.push(measure_get_info(&bare, warm_up, window).await);
                read_runs.push(measure_read(&occcd, &token, name, warm_up, window).await);
            }
            let baseline = LoadReport::merge(baseline_runs);
            let read = LoadReport::merge(read_runs);
            let ratio = read.rate() / baseline.rate();
            let p99_us = read.percentile(0.99).as_secs_f64() * 1e6;
            let verdict = if ratio >= 0.5 && p99_us <= 1000.0 { "" } else { "  <- misses the goal" };
            println!(
                "{name:<38} {:>10.0} {:>10.0} {:>10.0} {:>8} {ratio:>7.2} {:>13.0}{verdict}",
                read.rate(),
                read.percentile(0.50).as_secs_f64() * 1e6,
                p99_us,
                read.errors,
                baseline.percentile(0.99).as_secs_f64() * 1e6,
            );
            assert_eq!(read.errors, 0, "{name} failed during the benchmark");
        }
        drop(daemon);
    });
}
