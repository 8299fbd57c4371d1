//! Security events out under load: 1,000 audit entries per second (refused
//! calls, each one entry) while people log in, on a daemon with its event
//! outputs off and one sending every entry to rsyslogd and a webhook — in
//! the same run, windows interleaved. Prints login and audited-call p99 of
//! both and the ratio, and whether every entry reached both receivers.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    CHEAP_ARGON2, DevDir, RunningDaemon,
    load::LoadReport,
    people::{Person, bootstrap_super_admin, elevate, invite, log_in},
    receivers::{Rsyslog, WebhookReceiver, await_received, record_ids},
};

/// Audit entries per second the load writes.
const ENTRIES_PER_SEC: u64 = 1_000;
/// Logins per second during a window.
const LOGINS_PER_SEC: u64 = 20;

struct Bench {
    dir: DevDir,
    daemon: RunningDaemon,
    anonymous: OcccClient,
    people: Vec<Person>,
}

async fn set_up(extra_config: &str, people: usize) -> Bench {
    let dir = DevDir::new();
    // Every refused call audited: they are the load's audit entries.
    dir.set_config_with_auth(
        CHEAP_ARGON2,
        &format!("[audit]\nrefusals_per_minute_per_uid = 1000000\n{extra_config}"),
    );
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut invited = Vec::new();
    for i in 0..people {
        invited.push(
            invite(
                &admin,
                &anonymous,
                &format!("user{i}"),
                pb::UserRole::Operator,
            )
            .await,
        );
    }
    Bench {
        dir,
        daemon,
        anonymous,
        people: invited,
    }
}

/// One window: refused calls paced at [`ENTRIES_PER_SEC`] and logins at
/// [`LOGINS_PER_SEC`], for `window`. Returns (logins, refused calls).
async fn run_window(bench: &mut Bench, window: Duration) -> (LoadReport, LoadReport) {
    let start = Instant::now();
    let entries = (ENTRIES_PER_SEC as f64 * window.as_secs_f64()) as u64;
    let client = bench.anonymous.clone();
    let load = tokio::spawn(async move {
        let mut tasks = Vec::with_capacity(entries as usize);
        for i in 0..entries {
            let due = start + window.mul_f64(i as f64 / entries as f64);
            tokio::time::sleep_until(due.into()).await;
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let refused = client.verify_audit_chain().await.is_err();
                (refused, sent.elapsed())
            }));
        }
        let mut report = LoadReport {
            calls: 0,
            errors: 0,
            window,
            latencies: Vec::new(),
        };
        for task in tasks {
            let (refused, took) = task.await.expect("call");
            if refused {
                report.calls += 1;
                report.latencies.push(took);
            } else {
                report.errors += 1;
            }
        }
        report.latencies.sort_unstable();
        report
    });
    let logins = (LOGINS_PER_SEC as f64 * window.as_secs_f64()) as u64;
    let mut latencies = Vec::new();
    let mut errors = 0;
    for i in 0..logins {
        let due = start + window.mul_f64(i as f64 / logins as f64);
        tokio::time::sleep_until(due.into()).await;
        let person = bench
            .people
            .iter_mut()
            .find(|p| !p.recovery_codes.is_empty())
            .expect("a recovery code left");
        let code = person.recovery_codes.pop().expect("code");
        let sent = Instant::now();
        let login = bench
            .anonymous
            .auth()
            .login(pb::LoginRequest {
                username: person.username.clone(),
                password: person.password.clone(),
                second_factor: Some(pb::login_request::SecondFactor::RecoveryCode(code)),
            })
            .await;
        match login {
            Ok(_) => latencies.push(sent.elapsed()),
            Err(_) => errors += 1,
        }
    }
    latencies.sort_unstable();
    let logins = LoadReport {
        calls: latencies.len() as u64,
        errors,
        window,
        latencies,
    };
    (logins, load.await.expect("load"))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn bench(quick: bool) {
    let (window, rounds) = if quick {
        (Duration::from_secs(1), 1)
    } else {
        (Duration::from_secs(5), 3)
    };
    // Enough recovery codes for every login of every window (10 each).
    let people = (LOGINS_PER_SEC as usize * window.as_secs() as usize * rounds).div_ceil(10);
    let rsyslog = Rsyslog::start(None);
    let secret_dir = tempfile::tempdir().expect("dir");
    let secret_file = secret_dir.path().join("webhook.secret");
    let webhook = WebhookReceiver::start(&"b".repeat(40), &secret_file);
    let outputs = format!(
        "[events.syslog]\naddress = \"127.0.0.1:{}\"\n[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        rsyslog.port,
        webhook.url,
        secret_file.display().to_string()
    );
    let mut off = set_up("", people).await;
    let mut on = set_up(&outputs, people).await;
    let (mut logins, mut calls) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _ in 0..rounds {
        for (index, bench) in [&mut off, &mut on].into_iter().enumerate() {
            let (login, call) = run_window(bench, window).await;
            logins[index].push(login);
            calls[index].push(call);
        }
    }
    let drained = Instant::now();
    let Bench { dir, daemon, .. } = on;
    assert!(daemon.terminate().await.success());
    let expected: BTreeSet<u64> = {
        let (store, _) = dir.open_store().await;
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT sequence FROM audit_log")
            .fetch_all(store.raw_pool())
            .await
            .expect("sequences");
        store.close().await;
        rows.into_iter().map(|(s,)| s as u64).collect()
    };
    let all = |text: &str| record_ids(text).keys().copied().collect::<BTreeSet<_>>() == expected;
    let syslog = await_received(|| rsyslog.received(), all, "rsyslog lost entries").await;
    let hook = await_received(|| webhook.received(), all, "the webhook lost entries").await;
    let twice = |text: &str| record_ids(text).values().filter(|n| **n > 1).count();
    let [login_off, login_on] = logins.map(LoadReport::merge);
    let [call_off, call_on] = calls.map(LoadReport::merge);
    println!(
        "events out: {ENTRIES_PER_SEC} audit entries/s + {LOGINS_PER_SEC} logins/s, {rounds} x {} s windows per daemon, interleaved:",
        window.as_secs()
    );
    for (name, off, on) in [
        ("login", &login_off, &login_on),
        ("audited call", &call_off, &call_on),
    ] {
        println!(
            "  {name:<13} outputs off p50 {:>6.2} ms p99 {:>6.2} ms | on p50 {:>6.2} ms p99 {:>6.2} ms | p99 on/off {:.2}   errors {}/{}",
            ms(off.percentile(0.5)),
            ms(off.percentile(0.99)),
            ms(on.percentile(0.5)),
            ms(on.percentile(0.99)),
            on.percentile(0.99).as_secs_f64() / off.percentile(0.99).as_secs_f64(),
            off.errors,
            on.errors
        );
    }
    println!(
        "  delivered: {} entries; rsyslog has every one ({} twice), the webhook every one ({} twice); lost 0; all in within {:.1} s of the stop",
        expected.len(),
        twice(&syslog),
        twice(&hook),
        drained.elapsed().as_secs_f64()
    );
    println!("  (goal: none lost, login p99 on/off <= 1.05)");
    drop(off);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(std::env::var_os("OCCC_BENCH_QUICK").is_some()));
}
