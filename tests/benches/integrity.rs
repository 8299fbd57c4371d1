//! Container integrity, against the real dockerd `scripts/test` or
//! `scripts/bench` starts (`OCCC_TEST_DOCKER_SOCKET`):
//! 1. exec into a container → paused and isolated, p50/p95 over 20+
//!    trials, against the engine's own exec-event latency in the same run;
//! 2. hash sweep throughput against streaming the same path through the
//!    archive API without hashing (ratio);
//! 3. an idle daemon with monitoring on: RSS and CPU, against monitoring off.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use bollard::{Docker, query_parameters::DownloadFromContainerOptions};
use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, docker_ok, shared_socket},
    people::{bootstrap_super_admin, log_in},
};
use occcd::integrity::{archive, events};
use tokio_stream::StreamExt;

const TRIALS: usize = 20;

fn quick() -> bool {
    std::env::var_os("OCCC_BENCH_QUICK").is_some()
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[index]
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

/// 1. exec → paused and isolated, and the engine's own event latency.
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
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let viewer = log_in(&anonymous, &mut root).await;
    let mut watch = viewer
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await
        .expect("watch")
        .into_inner();
    // The engine's own latency: a bare events subscriber in this process.
    let docker = Docker::connect_with_unix(
        socket.to_str().expect("utf-8"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .expect("engine")
    .negotiate_version()
    .await
    .expect("engine version");
    let mut engine_events = docker.events(Some(events::stream_options(&names, None)));
    // Let the monitor finish its first sweep of every container.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (mut isolated, mut engine_seen) = (Vec::new(), Vec::new());
    for container in &containers {
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
        loop {
            let event = engine_events
                .next()
                .await
                .expect("engine event")
                .expect("event");
            if events::container_name(&event).as_deref() == Some(container.name.as_str())
                && event
                    .action
                    .as_deref()
                    .is_some_and(|a| a.starts_with("exec_create"))
            {
                engine_seen.push(started.elapsed());
                break;
            }
        }
        loop {
            let event = watch.next().await.expect("watch event").expect("update");
            if let Some(pb::integrity_event::Kind::Status(status)) = event.kind
                && status.container == container.name
                && status.quarantine.is_some()
            {
                isolated.push(started.elapsed());
                break;
            }
        }
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
    let (p50, p95) = (
        percentile(&mut isolated, 0.5),
        percentile(&mut isolated, 0.95),
    );
    let (e50, e95) = (
        percentile(&mut engine_seen, 0.5),
        percentile(&mut engine_seen, 0.95),
    );
    println!(
        "exec → paused and isolated, {TRIALS} trials on the real dockerd (from spawning `docker exec`)"
    );
    println!(
        "  occcd quarantine:   p50 {:>7.1} ms   p95 {:>7.1} ms   (goal p95 <= 300 ms)",
        ms(p50),
        ms(p95)
    );
    println!(
        "  engine exec event:  p50 {:>7.1} ms   p95 {:>7.1} ms   (baseline: a bare events subscriber)",
        ms(e50),
        ms(e95)
    );
    println!(
        "  isolation after the event (p50): {:.1} ms",
        ms(p50) - ms(e50)
    );
    daemon.terminate().await;
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

/// A `kB` field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// RSS and its anonymous part (KiB, at the end) and CPU % of an idle
/// daemon over `span`.
async fn idle(dir: &DevDir, span: Duration) -> (u64, u64, f64) {
    let daemon = RunningDaemon::start(dir).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ticks, start) = (cpu_ticks(daemon.pid()), Instant::now());
    tokio::time::sleep(span).await;
    let used = cpu_ticks(daemon.pid()) - ticks;
    let (rss, anon) = (
        status_kib(daemon.pid(), "VmRSS:"),
        status_kib(daemon.pid(), "RssAnon:"),
    );
    let elapsed = start.elapsed().as_secs_f64();
    daemon.terminate().await;
    // Linux reports CPU time in clock ticks of 1/100 s.
    (rss, anon, used as f64 / 100.0 / elapsed * 100.0)
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(socket) = shared_socket() else {
        println!(
            "integrity benchmarks SKIPPED: no Docker engine (run scripts/bench or scripts/test as root)"
        );
        return;
    };
    exec_to_isolation(&socket).await;
    hash_throughput(&socket).await;
    idle_cost(&socket).await;
}
