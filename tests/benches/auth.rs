//! Login latency of a legitimate user, idle and while 1,000 bad attempts
//! hammer another account, at occcd's default Argon2id cost; and the
//! daemon's peak RSS. The attacker runs as a second OS user (when root), as
//! a real attacker on another account would, paced to overlap the logins.
//!
//! Samples log in with password + recovery code: each TOTP step is single-
//! use, and the Argon2 verification that dominates login is the same.

use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use occc_client::{ConnectOptions, OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    load::LoadReport,
    os_user::{SOCKET_GROUP, ensure_other_user, is_root},
    people::{Person, bootstrap_super_admin, elevate, invite, log_in},
};
use tonic::Code;

const ATTEMPTS: u64 = 1_000;
const ROLE_ENV: &str = "OCCC_BENCH_ROLE";

fn bad_login() -> pb::LoginRequest {
    pb::LoginRequest {
        username: "victim".into(),
        password: "not-the-victims-password".into(),
        second_factor: Some(pb::login_request::SecondFactor::TotpCode("000000".into())),
    }
}

/// The attacker process: `ATTEMPTS` bad logins spread over `OCCC_BENCH_SPAN_MS`.
async fn attacker() {
    let socket = std::env::var("OCCC_BENCH_SOCKET").expect("socket");
    let span = Duration::from_millis(
        std::env::var("OCCC_BENCH_SPAN_MS")
            .expect("span")
            .parse()
            .expect("ms"),
    );
    let options = ConnectOptions {
        socket_path: socket.into(),
        expected_owner_uid: 0,
    };
    let client = OcccClient::connect(&options)
        .await
        .expect("attacker connects");
    let (refused, checked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..ATTEMPTS {
        let due = start + span.mul_f64(i as f64 / ATTEMPTS as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, refused, checked) = (client.clone(), refused.clone(), checked.clone());
        tasks.push(tokio::spawn(async move {
            match client.auth().login(bad_login()).await {
                Err(status) if status.code() == Code::ResourceExhausted => {
                    refused.fetch_add(1, Ordering::Relaxed)
                }
                _ => checked.fetch_add(1, Ordering::Relaxed),
            };
        }));
    }
    for task in tasks {
        task.await.expect("attempt");
    }
    println!(
        "{} {}",
        checked.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
}

fn spawn_attacker(
    dir: &DevDir,
    span: Duration,
    as_other_user: Option<(u32, u32)>,
) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().expect("bench path"));
    command
        .env(ROLE_ENV, "attacker")
        .env("OCCC_BENCH_SOCKET", dir.socket())
        .env("OCCC_BENCH_SPAN_MS", span.as_millis().to_string())
        .stdout(Stdio::piped());
    if let Some((uid, gid)) = as_other_user {
        command.uid(uid).gid(gid);
    }
    command.spawn().expect("attacker starts")
}

async fn timed_logins(client: &OcccClient, people: &mut [Person], per_person: usize) -> LoadReport {
    let start = Instant::now();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for _ in 0..per_person {
        for person in people.iter_mut() {
            let code = person.recovery_codes.pop().expect("recovery code");
            let sent = Instant::now();
            let result = client
                .auth()
                .login(pb::LoginRequest {
                    username: person.username.clone(),
                    password: person.password.clone(),
                    second_factor: Some(pb::login_request::SecondFactor::RecoveryCode(code)),
                })
                .await;
            match result {
                Ok(_) => latencies.push(sent.elapsed()),
                Err(_) => errors += 1,
            }
        }
    }
    latencies.sort_unstable();
    LoadReport {
        calls: latencies.len() as u64,
        errors,
        window: start.elapsed(),
        latencies,
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024.0
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn bench(quick: bool) {
    let dir = DevDir::new();
    let other = is_root().then(ensure_other_user);
    let socket_group = if other.is_some() {
        format!("[socket]\ngroup = \"{SOCKET_GROUP}\"\n")
    } else {
        String::new()
    };
    dir.set_config_with_auth("", &socket_group); // occcd's default Argon2id cost
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .expect("chmod");
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &client, "root").await;
    let admin = log_in(&client, &mut root).await;
    elevate(&admin, &mut root).await;
    invite(&admin, &client, "victim", pb::UserRole::Viewer).await;
    let count = if quick { 2 } else { 5 };
    let mut people = Vec::new();
    for i in 0..count {
        people.push(invite(&admin, &client, &format!("user{i}"), pb::UserRole::Operator).await);
    }

    let idle = timed_logins(&client, &mut people, 5).await;
    let attacker = spawn_attacker(&dir, idle.window, other);
    let attacked = timed_logins(&client, &mut people, 5).await;
    let output = attacker.wait_with_output().expect("attacker ends");
    let counts = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let (checked, refused) = counts.split_once(' ').unwrap_or(("?", "?"));

    println!(
        "login (password + recovery code), Argon2id t=3 m=64 MiB p=4, {} logins each:",
        idle.calls
    );
    println!(
        "  {:<14} p50 {:>7.1} ms   p99 {:>7.1} ms   errors {}",
        "idle",
        ms(idle.percentile(0.5)),
        ms(idle.percentile(0.99)),
        idle.errors
    );
    println!(
        "  {:<14} p50 {:>7.1} ms   p99 {:>7.1} ms   errors {}",
        "under attack",
        ms(attacked.percentile(0.5)),
        ms(attacked.percentile(0.99)),
        attacked.errors
    );
    match other {
        Some(_) => println!(
            "  attacker: separate OS user, {ATTEMPTS} bad attempts on another account over {:.1} s",
            idle.window.as_secs_f64()
        ),
        None => println!(
            "  *** attacker shares this uid (not root): per-uid throttling applies to both ***"
        ),
    }
    println!("  attempts checked (Argon2 run): {checked}; refused before hashing: {refused}");
    println!(
        "  ratio p99 attack/idle: {:.2}   (goal <= 2.0)   daemon peak RSS: {:.0} MiB (goal <= 256)",
        attacked.percentile(0.99).as_secs_f64() / idle.percentile(0.99).as_secs_f64(),
        peak_rss_mib(daemon.pid())
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var(ROLE_ENV).as_deref() == Ok("attacker") {
        runtime.block_on(attacker());
    } else {
        runtime.block_on(bench(std::env::var_os("OCCC_BENCH_QUICK").is_some()));
    }
}
