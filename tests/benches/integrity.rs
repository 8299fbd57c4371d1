//! Container integrity, against the real dockerd `scripts/test` or
//! `scripts/bench` starts (`OCCC_TEST_DOCKER_SOCKET`):
//! 1. exec into a container → paused and isolated, p50/p95 over 20+
//!    trials, against the engine's own exec-event latency in the same run;
//! 2. hash sweep throughput against streaming the same path through the
//!    archive API without hashing (ratio);
//! 3. an idle daemon with monitoring on: RSS and CPU, against monitoring off;
//! 4. the peak RSS while snapshotting, verifying and exporting a container
//!    with 64 × 60 MiB of changed files (512 MiB kept), against the RSS
//!    before it began.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use bollard::{Docker, query_parameters::DownloadFromContainerOptions};
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, docker_ok, shared_socket},
    process_usage::{cpu_time, status_kib},
};
use occcd::integrity::{archive, events};
use tokio_stream::StreamExt;

const TRIALS: usize = 20;

fn quick() -> bool {
    std::env::var_os("OCCC_BENCH_QUICK").is_some()
}

fn integrity_section(socket: &Path, names: &[String]) -> String {
    let mut text = format!(
        "[integrity]\ndocker_socket = {:?}\n",
        socket.display().to_string()
    );
    for name in names {
        text.push_str(&format!(
            "[[integrity.containers]]\nname = {name:?}\nprotected_paths = [\"/app\"]\n\
             critical_paths = [\"/app/gateway.sh\"]\nprocess_allowlist = [\"sleep\"]\n"
        ));
    }
    text
}

/// What one trial saw, in ms since `docker exec` was spawned.
#[derive(Default)]
struct Trial {
    /// A bare events subscriber received the exec event.
    received: f64,
    /// The engine announced the pause.
    paused_event: f64,
    /// The engine announced the last network disconnect.
    disconnected_event: f64,
}

/// occcd's own timings of one quarantine (ms after its event arrived), from
/// the `quarantine_started` audit detail.
struct Timings {
    decided: f64,
    links_cut: f64,
    settled: f64,
    paused: f64,
    networks: f64,
    verified: f64,
}

async fn quarantine_timings(dir: &DevDir) -> std::collections::HashMap<String, Timings> {
    let (store, _) = dir.open_store().await;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT detail FROM audit_log WHERE kind = 'quarantine_started' ORDER BY sequence",
    )
    .fetch_all(store.raw_pool())
    .await
    .expect("audit rows");
    let mut found = std::collections::HashMap::new();
    for (detail,) in rows {
        let event: serde_json::Value = serde_json::from_str(&detail).expect("json");
        let inner: serde_json::Value =
            serde_json::from_str(event["detail"].as_str().expect("detail")).expect("inner json");
        let timings = &inner["isolation"]["timings"];
        let at = |key: &str| timings[key].as_f64().unwrap_or(f64::NAN);
        assert_eq!(
            inner["isolation"]["verified"], true,
            "isolation verified: {inner}"
        );
        found.insert(
            event["container"].as_str().expect("container").to_owned(),
            Timings {
                decided: at("decided_ms"),
                settled: at("execs_settled_ms"),
                links_cut: at("links_cut_ms"),
                paused: at("paused_ms"),
                networks: at("networks_ms"),
                verified: at("verified_ms"),
            },
        );
    }
    found
}

/// One column of the breakdown: a time, in ms since the spawn.
type Pick = dyn Fn(&Trial, &Timings) -> f64;

fn percentiles(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

/// 1. exec → paused and isolated: the engine's own events seen by a bare
///    subscriber in this process, and occcd's timings from its audit log.
async fn exec_to_isolation(socket: &Path) {
    let containers: Vec<TestContainer> = (0..TRIALS)
        .map(|i| {
            let container = TestContainer::create(
                socket,
                &format!("bench{i}"),
                &TestContainer::hardened_flags(),
            );
            container.start();
            container
        })
        .collect();
    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    let dir = DevDir::new();
    dir.set_config(&integrity_section(socket, &names));
    let daemon = RunningDaemon::start(&dir).await;
    let docker = Docker::connect_with_unix(
        socket.to_str().expect("utf-8"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .expect("engine")
    .negotiate_version()
    .await
    .expect("engine version");
    let mut engine_events = docker.events(Some(events::stream_options(None)));
    // Let the monitor finish its first sweep of every container.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut trials = Vec::new();
    for container in &containers {
        let id = container.inspect("{{.Id}}");
        let started = Instant::now();
        let mut exec = std::process::Command::new("docker")
            .args([
                "-H",
                &format!("unix://{}", socket.display()),
                "exec",
                &container.name,
                "true",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker exec");
        let mut trial = Trial::default();
        let since = |start: Instant| ms(start.elapsed());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while trial.paused_event == 0.0 || trial.disconnected_event == 0.0 {
            let event = tokio::time::timeout_at(deadline, engine_events.next())
                .await
                .expect("the engine reports the quarantine within 10 s")
                .expect("engine event")
                .expect("event");
            let action = event.action.as_deref().unwrap_or_default();
            if events::container_name(&event).as_deref() == Some(container.name.as_str()) {
                if action.starts_with("exec_create") && trial.received == 0.0 {
                    trial.received = since(started);
                } else if action == "pause" {
                    trial.paused_event = since(started);
                }
            } else if action == "disconnect"
                && event
                    .actor
                    .as_ref()
                    .and_then(|actor| actor.attributes.as_ref())
                    .and_then(|attributes| attributes.get("container"))
                    == Some(&id)
            {
                trial.disconnected_event = since(started);
            }
        }
        trials.push(trial);
        // Let verification and the snapshot finish before the next trial.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = exec.kill();
        let _ = exec.wait();
    }
    // Paused, every one (`docker ps` reads the engine's view, no container lock).
    let listed = docker_ok(
        socket,
        &["ps", "--filter", "status=paused", "--format", "{{.Names}}"],
    );
    for container in &containers {
        assert!(
            listed.lines().any(|name| name == container.name),
            "{} not paused",
            container.name
        );
    }
    daemon.terminate().await;
    let timings = quarantine_timings(&dir).await;
    let of = |name: &String| {
        timings
            .get(name)
            .unwrap_or_else(|| panic!("no quarantine_started entry for {name}"))
    };
    let column = |pick: &Pick| -> (f64, f64) {
        let values: Vec<f64> = trials
            .iter()
            .zip(&names)
            .map(|(trial, name)| pick(trial, of(name)))
            .collect();
        percentiles(&values)
    };
    println!(
        "exec → paused and isolated, {TRIALS} trials on the real dockerd (ms from spawning `docker exec`)"
    );
    let rows: [(&str, &Pick); 12] = [
        ("engine exec event received (baseline)", &|t, _| t.received),
        ("  + occcd decided", &|t, d| t.received + d.decided),
        ("  + links cut from the host", &|t, d| {
            t.received + d.links_cut
        }),
        ("  + execs being started settled", &|t, d| {
            t.received + d.settled
        }),
        ("  + pause returned", &|t, d| t.received + d.paused),
        ("  = paused and links cut (goal p95 <= 100)", &|t, d| {
            t.received + d.paused.max(d.links_cut)
        }),
        ("  + engine disconnected networks", &|t, d| {
            t.received + d.networks
        }),
        ("  + verified by inspect", &|t, d| t.received + d.verified),
        ("engine pause event", &|t, _| t.paused_event),
        ("engine disconnect event", &|t, _| t.disconnected_event),
        ("isolation after the event (verified)", &|_, d| d.verified),
        // runc exec has started the exec'd process by the time it settles:
        // this is how long an attacker's process runs before it is frozen.
        ("exec'd process alive before the pause", &|_, d| {
            d.paused - d.settled
        }),
    ];
    for (label, pick) in rows {
        let (p50, p95) = column(pick);
        println!("  {label:<46} p50 {p50:>7.1}   p95 {p95:>7.1}");
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// 2. Hashing through the archive API against plain streaming of the same path.
async fn hash_throughput(socket: &Path) {
    let container = TestContainer::create(socket, "hashbench", &["--user", "node"]);
    container.start();
    let size_mib: usize = if quick() { 64 } else { 256 };
    let host = tempfile::tempdir().expect("tmp");
    let blob = host.path().join("blob.bin");
    let mut bytes = vec![0u8; size_mib << 20];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    std::fs::write(&blob, &bytes).expect("write blob");
    docker_ok(
        socket,
        &[
            "cp",
            blob.to_str().expect("utf-8"),
            &format!("{}:/app/blob.bin", container.name),
        ],
    );
    let docker = Docker::connect_with_unix(
        socket.to_str().expect("utf-8"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .expect("engine")
    .negotiate_version()
    .await
    .expect("engine version");
    let (mut hashed, mut streamed) = (Duration::ZERO, Duration::ZERO);
    let rounds = if quick() { 3 } else { 5 };
    for _ in 0..rounds {
        let start = Instant::now();
        let mut stream = docker.download_from_container(
            &container.name,
            Some(DownloadFromContainerOptions {
                path: "/app/blob.bin".to_owned(),
            }),
        );
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            total += chunk.expect("chunk").len();
        }
        assert!(total >= size_mib << 20);
        streamed += start.elapsed();
        let start = Instant::now();
        let files = archive::hash_path(&docker, &container.name, "/app/blob.bin", u64::MAX)
            .await
            .expect("hash");
        hashed += start.elapsed();
        assert_eq!(files.len(), 1);
    }
    let mib = (size_mib * rounds) as f64;
    let (hash_rate, stream_rate) = (mib / hashed.as_secs_f64(), mib / streamed.as_secs_f64());
    println!("hash sweep through the archive API, {size_mib} MiB × {rounds} rounds");
    println!(
        "  stream only: {stream_rate:>7.0} MiB/s   hash while streaming: {hash_rate:>7.0} MiB/s"
    );
    println!(
        "  ratio hash/stream: {:.2}   (goal >= 0.8)",
        hash_rate / stream_rate
    );
}

/// RSS and its anonymous part (KiB, at the end) and CPU % of an idle
/// daemon over `span`.
async fn idle(dir: &DevDir, span: Duration) -> (u64, u64, f64) {
    let daemon = RunningDaemon::start(dir).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, start) = (cpu_time(daemon.pid()), Instant::now());
    tokio::time::sleep(span).await;
    let used = cpu_time(daemon.pid()) - cpu;
    let (rss, anon) = (
        status_kib(daemon.pid(), "VmRSS:"),
        status_kib(daemon.pid(), "RssAnon:"),
    );
    let elapsed = start.elapsed().as_secs_f64();
    daemon.terminate().await;
    (rss, anon, used.as_secs_f64() / elapsed * 100.0)
}

/// 3. Idle daemon: monitoring on (one healthy container) against off.
async fn idle_cost(socket: &Path) {
    let container = TestContainer::create(socket, "idlebench", &TestContainer::hardened_flags());
    container.start();
    let span = Duration::from_secs(if quick() { 15 } else { 60 });
    let on = DevDir::new();
    on.set_config(&integrity_section(
        socket,
        std::slice::from_ref(&container.name),
    ));
    let off = DevDir::new();
    off.set_config("[integrity]\nenabled = false\n");
    let (rss_on, anon_on, cpu_on) = idle(&on, span).await;
    let (rss_off, anon_off, cpu_off) = idle(&off, span).await;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "idle daemon over {} s (default intervals: poll 10 s, hashes 60 s)",
        span.as_secs()
    );
    println!(
        "  monitoring on:  RSS {:>5.1} MiB (anonymous {:>4.1})   CPU {cpu_on:.2} %   (goal <= 20 MiB, <= 0.5 %)",
        mib(rss_on),
        mib(anon_on)
    );
    println!(
        "  monitoring off: RSS {:>5.1} MiB (anonymous {:>4.1})   CPU {cpu_off:.2} %   (baseline)",
        mib(rss_off),
        mib(anon_off)
    );
}

/// 4. Memory while a large snapshot is written and read back.
async fn snapshot_memory(socket: &Path) {
    use occc_tests::big_snapshot::{self, FILE_MIB, FILES};
    let measured = big_snapshot::run(socket, 512 << 20).await;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "snapshot of {FILES} × {FILE_MIB} MiB of changed files, {} MiB kept (verified: {})",
        measured.stored() >> 20,
        measured.verified.ok
    );
    println!(
        "  RSS before: {:>5.1} MiB (baseline)",
        mib(measured.before_kib)
    );
    println!(
        "  peak writing:            {:>5.1} MiB  ratio {:.2}   (goal < 64 MiB)",
        mib(measured.writing_peak_kib),
        measured.writing_peak_kib as f64 / measured.before_kib as f64
    );
    println!(
        "  peak verifying+exporting: {:>5.1} MiB  ratio {:.2}   (goal < 64 MiB)",
        mib(measured.reading_peak_kib),
        measured.reading_peak_kib as f64 / measured.before_kib as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(socket) = shared_socket() else {
        occc_tests::skip::unavailable(
            "integrity benchmarks",
            "a Docker engine (scripts/bench and scripts/test start one as root)",
        );
        return;
    };
    // OCCC_BENCH_ONLY=quarantine|hash|idle|snapshot runs one part.
    let only = std::env::var("OCCC_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only == part;
    if wanted("quarantine") {
        exec_to_isolation(&socket).await;
    }
    if wanted("hash") {
        hash_throughput(&socket).await;
    }
    if wanted("idle") {
        idle_cost(&socket).await;
    }
    if wanted("snapshot") {
        snapshot_memory(&socket).await;
    }
}
