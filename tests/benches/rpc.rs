//! Unary RPCs through occcd's full stack — anonymous (socket, peer
//! credentials, gate) and authenticated (plus session token and RBAC check) —
//! against a bare tonic server on a Unix socket, at the same concurrency, in
//! the same run, in alternating rounds.
//!
//! Then every read RPC a frontend polls, one row each, against the same
//! baseline (issue #17's goal: rate >= 0.5x baseline, p99 <= 1 ms at 16
//! clients); rows that miss it are marked. Each row is also measured
//! against bare tonic giving an answer of the row's size, so a p99 that is
//! the machine's for that many bytes shows as such.
//!
//! `cargo bench -p occc-tests --bench rpc`; `OCCC_BENCH_QUICK=1` for a short
//! smoke run. Needs `cargo build --release --bins` first (scripts/bench does both).

#[path = "rpc/baseline.rs"]
mod baseline;
#[path = "rpc/typescript.rs"]
mod typescript;

use std::{sync::Arc, time::Duration};

use baseline::{measure_get_info, start_bare_server};
use occc_client::{ConnectOptions, OcccClient, SessionToken, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    load::{LoadReport, run_load},
    people::{bootstrap_super_admin, log_in},
};

const CONCURRENCY: usize = 16;

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

/// One call of read RPC `name` on `client`: `None` if it failed, else the
/// encoded size of its answer when `sizing` (0 otherwise: not computed).
async fn call_read(client: &OcccClient, name: &str, sizing: bool) -> Option<usize> {
    fn size<M: prost::Message>(answer: tonic::Response<M>, sizing: bool) -> usize {
        if sizing {
            answer.get_ref().encoded_len()
        } else {
            0
        }
    }
    match name {
        "Auth/WhoAmI" => client
            .auth()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Users/ListUsers" => client
            .users()
            .list_users(pb::ListUsersRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Users/ListActiveSessions" => client
            .users()
            .list_active_sessions(pb::ListActiveSessionsRequest {})
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Users/ListAllSessions" => client
            .users()
            .list_all_sessions(pb::ListAllSessionsRequest {})
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Integrity/ListFindings" => client
            .integrity()
            .list_findings(pb::ListFindingsRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Integrity/GetIntegrityStatus" => client
            .integrity()
            .get_integrity_status(pb::GetIntegrityStatusRequest {})
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Integrity/ListSnapshots" => client
            .integrity()
            .list_snapshots(pb::ListSnapshotsRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Skills/ListSkills" => client
            .skills()
            .list_skills(pb::ListSkillsRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Skills/GetSkill" => client
            .skills()
            .get_skill(pb::SkillRef {
                tree_hash: SKILL.get().cloned().unwrap_or_default(),
            })
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Audit/ListAuditEntries" => client
            .audit()
            .list_audit_entries(pb::ListAuditEntriesRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Config/GetConfig" => client
            .config()
            .get_config(pb::GetConfigRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        "Config/ListConfigVersions" => client
            .config()
            .list_config_versions(pb::ListConfigVersionsRequest::default())
            .await
            .ok()
            .map(|answer| size(answer, sizing)),
        _ => None,
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
            async move { call_read(&client, name, false).await.is_some() }
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
        let (bare, bare_answer) = start_bare_server(&dir);
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

        typescript::compare_typescript_client(&occcd, rounds, warm_up, window).await;

        println!(
            "\nread RPCs a frontend polls ({CONCURRENCY} clients; goal: rate >= 0.50x baseline, p99 <= 1000 µs)"
        );
        println!(
            "  base: bare tonic's echo between the row's rounds; same size: bare tonic giving an \
             answer of the row's size, also between them"
        );
        println!(
            "{:<30} {:>8} {:>7} {:>7} {:>6} {:>6} {:>9} {:>7} {:>9} {:>6}",
            "rpc",
            "req/s",
            "p50 µs",
            "p99 µs",
            "errors",
            "ratio",
            "base p99",
            "bytes",
            "same p99",
            "p99 ×"
        );
        for name in READS {
            let bytes = call_read(&session, name, true)
                .await
                .unwrap_or_else(|| panic!("{name} answers"));
            let (mut baseline_runs, mut same_runs, mut read_runs) =
                (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                bare_answer.echo();
                baseline_runs.push(measure_get_info(&bare, warm_up, window).await);
                bare_answer.sized(bytes);
                same_runs.push(measure_get_info(&bare, warm_up, window).await);
                read_runs.push(measure_read(&occcd, &token, name, warm_up, window).await);
            }
            let same_bytes = bare_answer.bytes();
            let baseline = LoadReport::merge(baseline_runs);
            let same = LoadReport::merge(same_runs);
            let read = LoadReport::merge(read_runs);
            let ratio = read.rate() / baseline.rate();
            let micros = |report: &LoadReport, q| report.percentile(q).as_secs_f64() * 1e6;
            let p99_us = micros(&read, 0.99);
            let verdict = if ratio >= 0.5 && p99_us <= 1000.0 {
                ""
            } else if micros(&same, 0.99) > 1000.0 {
                "  <- misses; so does bare tonic with that answer"
            } else {
                "  <- misses the goal"
            };
            println!(
                "{name:<30} {:>8.0} {:>7.0} {p99_us:>7.0} {:>6} {ratio:>6.2} {:>9.0} {same_bytes:>7} {:>9.0} {:>6.2}{verdict}",
                read.rate(),
                micros(&read, 0.50),
                read.errors,
                micros(&baseline, 0.99),
                micros(&same, 0.99),
                p99_us / micros(&same, 0.99),
            );
            assert_eq!(read.errors, 0, "{name} failed during the benchmark");
            assert!(
                same_bytes.abs_diff(bytes) <= bytes / 20 + 128,
                "{name}: the same-size answer is {same_bytes} bytes, not about {bytes}"
            );
        }
        bare_answer.echo();
        drop(daemon);
    });
}
