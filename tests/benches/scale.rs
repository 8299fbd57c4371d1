//! occcd on a big store (issue #17): 10,000 users, 50,000 sessions over time
//! (1,000 still current) and 1,000,000 audit entries, written straight into
//! a real SQLCipher store with the daemon's key and a valid chain; then the
//! daemon's start-up time, its RSS, and the p99 of paged `ListUsers` and
//! `ListAuditEntries` from 16 clients. Goals: p99 <= 5 ms, start-up <= 1 s,
//! RSS <= 64 MiB.
//!
//! `scripts/scale` runs it at full size; `OCCC_BENCH_QUICK=1` at a tenth.
//! Sizes can be set with `OCCC_SCALE_USERS`, `OCCC_SCALE_SESSIONS`,
//! `OCCC_SCALE_AUDIT`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    generated_audit::{GeneratedAudit, append_generated_audit},
    people::{bootstrap_super_admin, log_in},
    process_usage::{cpu_time, status_kib},
};
use occcd::store::Store;

const CLIENTS: usize = 16;
const PAGE: u32 = 100;
/// One in this many generated audit entries is a rare kind.
const RARE_EVERY: u64 = 1_000;

fn size(name: &str, full: u64, quick: bool) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(if quick { full / 10 } else { full })
}

fn now_ms() -> i64 {
    use occcd::clock::Clock;
    occcd::clock::SystemClock.now().0
}

/// Accounts `user00000`…, all active viewers sharing root's password hash.
async fn generate_users(store: &Store, count: u64) {
    let pool = store.raw_pool();
    let phc: String = sqlx::query_scalar("SELECT password_phc FROM users WHERE username = 'root'")
        .fetch_one(pool)
        .await
        .expect("root's hash");
    let now = now_ms();
    let mut tx = pool.begin().await.expect("begin");
    for index in 0..count {
        sqlx::query(
            "INSERT INTO users (username, role, state, password_phc, created_at, updated_at) \
             VALUES (?, 'viewer', 'active', ?, ?, ?)",
        )
        .bind(format!("user{index:05}"))
        .bind(&phc)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("insert user");
    }
    tx.commit().await.expect("commit users");
}

/// Sessions of those accounts: all but `current` ended days ago.
async fn generate_sessions(store: &Store, count: u64, users: u64, current: u64) {
    let pool = store.raw_pool();
    let first_id: i64 = sqlx::query_scalar("SELECT min(id) FROM users WHERE username LIKE 'user%'")
        .fetch_one(pool)
        .await
        .expect("first generated user");
    let now = now_ms();
    let mut tx = pool.begin().await.expect("begin");
    for index in 0..count {
        let seen = if index < current {
            now - 60_000
        } else {
            now - 86_400_000 * 3
        };
        let user = first_id + i64::try_from(index % users.max(1)).expect("fits");
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, peer_uid, created_at, last_seen_at) \
             VALUES (?, ?, ?, 0, ?, ?)",
        )
        .bind(format!("scale-{index:08}"))
        .bind(
            ring::digest::digest(&ring::digest::SHA256, &index.to_le_bytes())
                .as_ref()
                .to_vec(),
        )
        .bind(user)
        .bind(seen - 1_000)
        .bind(seen)
        .execute(&mut *tx)
        .await
        .expect("insert session");
    }
    tx.commit().await.expect("commit sessions");
}

fn percentile(latencies: &mut [Duration], q: f64) -> Duration {
    latencies.sort_unstable();
    let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
    latencies.get(index).copied().unwrap_or_default()
}

/// Every client walks `pages` pages of what `call` lists; per-call latencies.
async fn walk<F, Fut>(clients: &[Arc<OcccClient>], pages: usize, call: F) -> Vec<Duration>
where
    F: Fn(Arc<OcccClient>, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let mut tasks = Vec::new();
    for client in clients {
        let (client, call) = (Arc::clone(client), call.clone());
        tasks.push(tokio::spawn(async move {
            let (mut token, mut latencies) = (String::new(), Vec::new());
            for _ in 0..pages {
                let began = Instant::now();
                token = call(Arc::clone(&client), token).await;
                latencies.push(began.elapsed());
                if token.is_empty() {
                    break;
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("walker"));
    }
    all
}

/// Where the time of a row went: the daemon's CPU and this bench's (its
/// clients decode every page) against the wall time, in cores.
struct Busy {
    daemon: f64,
    clients: f64,
}

/// Runs `walk` and measures the CPU the daemon (`pid`) and this process
/// used meanwhile.
async fn busy_while<T>(pid: u32, walk: impl std::future::Future<Output = T>) -> (T, Busy) {
    let me = std::process::id();
    let (daemon_before, clients_before, began) = (cpu_time(pid), cpu_time(me), Instant::now());
    let walked = walk.await;
    let wall = began.elapsed().as_secs_f64();
    let busy = Busy {
        daemon: (cpu_time(pid) - daemon_before).as_secs_f64() / wall,
        clients: (cpu_time(me) - clients_before).as_secs_f64() / wall,
    };
    (walked, busy)
}

fn report(name: &str, (mut latencies, busy): (Vec<Duration>, Busy)) {
    let p50 = percentile(&mut latencies, 0.50);
    let p99 = percentile(&mut latencies, 0.99);
    let verdict = if p99 <= Duration::from_millis(5) {
        ""
    } else {
        "  <- misses the goal"
    };
    println!(
        "  {name:<44} {:>6} calls  p50 {:>7.2} ms  p99 {:>7.2} ms  cores busy: daemon {:.2}, \
         clients {:.2}{verdict}",
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        busy.daemon,
        busy.clients,
    );
}

fn audit_call(
    kind: &'static str,
) -> impl Fn(
    Arc<OcccClient>,
    String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>
+ Clone
+ Send
+ 'static {
    move |client, token| {
        Box::pin(async move {
            client
                .audit()
                .list_audit_entries(pb::ListAuditEntriesRequest {
                    page_size: PAGE,
                    page_token: token,
                    kind: kind.into(),
                    ..Default::default()
                })
                .await
                .expect("ListAuditEntries")
                .into_inner()
                .next_page_token
        })
    }
}

fn main() {
    let quick = std::env::var_os("OCCC_BENCH_QUICK").is_some();
    let users = size("OCCC_SCALE_USERS", 10_000, quick);
    let sessions = size("OCCC_SCALE_SESSIONS", 50_000, quick);
    let entries = size("OCCC_SCALE_AUDIT", 1_000_000, quick);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = DevDir::new();
        let daemon = RunningDaemon::start(&dir).await;
        let anonymous = daemon.client().await;
        let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
        drop(anonymous);
        daemon.terminate().await;

        let began = Instant::now();
        let (store, hasher) = dir.open_store().await;
        generate_users(&store, users).await;
        generate_sessions(&store, sessions, users, sessions / 50).await;
        append_generated_audit(
            &store,
            &hasher,
            GeneratedAudit {
                count: entries,
                users,
                rare_every: RARE_EVERY,
            },
        )
        .await;
        store.close().await;
        // A daemon signs checkpoints as entries come (every interval); the
        // generated log gets its one now, or the first shutdown would walk
        // the whole million to sign it.
        let signing = Instant::now();
        let unlocked = occcd::lifecycle::open_store(&dir.config()).await.expect("store");
        let hasher = Arc::new(occcd::audit::ChainHasher::new(
            &unlocked.keys.derive(occcd::crypto::KeyPurpose::AuditChain),
        ));
        let signer = occcd::audit::checkpoint::CheckpointSigner::new(
            &unlocked.keys.derive(occcd::crypto::KeyPurpose::AuditCheckpoints),
            hasher,
        )
        .expect("signer");
        occcd::audit::checkpoint::checkpoint_head(&unlocked.store, &signer, &occcd::clock::SystemClock)
            .await
            .expect("checkpoint");
        unlocked.store.close().await;
        println!(
            "  the generated log's checkpoint signed in {:.1} s (a daemon signs as it goes)",
            signing.elapsed().as_secs_f64()
        );
        let db_mib = std::fs::metadata(dir.database()).map_or(0, |m| m.len()) >> 20;
        println!(
            "store: {users} users, {sessions} sessions ({} current), {entries} audit entries — \
             generated in {:.1} s, database {db_mib} MiB",
            sessions / 50,
            began.elapsed().as_secs_f64()
        );

        for attempt in ["first (drops ended sessions)", "second"] {
            let began = Instant::now();
            let daemon = RunningDaemon::start(&dir).await;
            let startup = began.elapsed();
            let pid = daemon.pid();
            println!(
                "  start-up, {attempt:<30} {:>7.0} ms{}   RSS {:.1} MiB",
                startup.as_secs_f64() * 1e3,
                if startup <= Duration::from_secs(1) {
                    ""
                } else {
                    "  <- misses the goal (1 s)"
                },
                status_kib(pid, "VmRSS:") as f64 / 1024.0
            );
            daemon.terminate().await;
        }

        let daemon = RunningDaemon::start(&dir).await;
        let anonymous = daemon.client().await;
        let session = log_in(&anonymous, &mut root).await;
        let token = session.session().expect("session").clone();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let client = daemon.client().await;
            clients.push(Arc::new(client.with_session(token.clone())));
        }
        let user_pages = usize::try_from(users).expect("fits") / PAGE as usize + 1;
        let list_users = |client: Arc<OcccClient>, token| async move {
            client
                .users()
                .list_users(pb::ListUsersRequest {
                    page_size: PAGE,
                    page_token: token,
                })
                .await
                .expect("ListUsers")
                .into_inner()
                .next_page_token
        };
        let pid = daemon.pid();
        for walkers in [1, CLIENTS] {
            let clients = &clients[..walkers];
            println!(
                "paged reads, {walkers} client(s) at once, {PAGE} per page (goal: p99 <= 5 ms)"
            );
            report(
                "ListUsers, every page",
                busy_while(pid, walk(clients, user_pages, list_users)).await,
            );
            report(
                "ListAuditEntries, newest 100 pages",
                busy_while(pid, walk(clients, 100, audit_call(""))).await,
            );
            report(
                "ListAuditEntries kind=login_failed, 100 pages",
                busy_while(pid, walk(clients, 100, audit_call("login_failed"))).await,
            );
            report(
                "ListAuditEntries kind=user_deleted (0.1 %), 20",
                busy_while(pid, walk(clients, 20, audit_call("user_deleted"))).await,
            );
        }
        println!(
            "daemon RSS after the reads {:.1} MiB, peak {:.1} MiB (goal <= 64 MiB)",
            status_kib(pid, "VmRSS:") as f64 / 1024.0,
            status_kib(pid, "VmHWM:") as f64 / 1024.0
        );

        // Backup while serving, restore while stopped (issue #15).
        let backup = dir.path().join("scale-backup.tar");
        let began = Instant::now();
        let (status, output) = dir.run_occcd(&["backup", backup.to_str().expect("utf-8")]).await;
        assert!(status.success(), "{output}");
        let backup_took = began.elapsed();
        let backup_mib = std::fs::metadata(&backup).map_or(0, |m| m.len()) as f64 / 1048576.0;
        daemon.terminate().await;
        let db_mib = std::fs::metadata(dir.database()).map_or(0, |m| m.len()) as f64 / 1048576.0;
        println!(
            "backup of {users} users and {entries} audit entries while serving: {:.1} s, {backup_mib:.1} MiB \
             (database {db_mib:.1} MiB)",
            backup_took.as_secs_f64(),
        );
        // The daemon's stop entry came after the backup: dropping it is asked for.
        let began = Instant::now();
        let (status, output) = dir
            .run_occcd(&["restore", "--accept-loss", backup.to_str().expect("utf-8")])
            .await;
        assert!(status.success(), "{output}");
        println!(
            "verified restore (checksum, integrity, chain of {entries} entries): {:.1} s",
            began.elapsed().as_secs_f64()
        );
    });
}
