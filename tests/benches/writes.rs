//! Writes on the real SQLCipher store with `synchronous = FULL` (issue #17):
//! the audit writer's group commit under 64 concurrent writers, a login's
//! writes (TOTP step, session row, audit entry) from 16 concurrent logins,
//! and `CreateUser` over the socket from 16 clients — each against one
//! committed single-row transaction at a time on the same store, measured in
//! the same run (the cost of one fsync'd commit, the floor every write pays).
//!
//! `cargo bench -p occc-tests --bench writes`; `OCCC_BENCH_QUICK=1` for a
//! short run. Needs `cargo build --release --bins` first.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    load::{LoadReport, run_load},
    people::signed_in_super_admin,
};
use occcd::{
    audit::{AccountAction, Actor, AuditEvent, AuditLog},
    clock::SystemClock,
    store::{SessionRow, Store},
};

fn login_event() -> AuditEvent {
    AuditEvent::Account {
        action: AccountAction::LoginSucceeded,
        subject: Some("root".into()),
        detail: Some("method=password".into()),
    }
}

/// One single-row transaction at a time: the fsync'd commit every write pays.
async fn measure_commits(store: &Store, warm_up: Duration, window: Duration) -> LoadReport {
    let store = store.clone();
    let counter = Arc::new(AtomicU64::new(0));
    run_load(1, warm_up, window, move |_| {
        let (store, counter) = (store.clone(), Arc::clone(&counter));
        move || {
            let (store, counter) = (store.clone(), Arc::clone(&counter));
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                sqlx::query("INSERT INTO os_account_links (user_id, os_account, linked_at) VALUES (1, ?, 0) ON CONFLICT (user_id) DO UPDATE SET os_account = excluded.os_account")
                    .bind(format!("bench{n}"))
                    .execute(store.raw_pool())
                    .await
                    .is_ok()
            }
        }
    })
    .await
}

async fn measure_audit(
    audit: &AuditLog,
    writers: usize,
    warm_up: Duration,
    window: Duration,
) -> LoadReport {
    let audit = audit.clone();
    run_load(writers, warm_up, window, move |_| {
        let audit = audit.clone();
        move || {
            let audit = audit.clone();
            async move {
                audit
                    .record(Actor::user(None, "root"), login_event())
                    .await
                    .is_ok()
            }
        }
    })
    .await
}

/// What a password login writes once its proofs held.
async fn measure_login_writes(
    store: &Store,
    audit: &AuditLog,
    root_id: i64,
    warm_up: Duration,
    window: Duration,
) -> LoadReport {
    let (store, audit) = (store.clone(), audit.clone());
    let counter = Arc::new(AtomicU64::new(1 << 32));
    run_load(16, warm_up, window, move |_| {
        let (store, audit, counter) = (store.clone(), audit.clone(), Arc::clone(&counter));
        move || {
            let (store, audit, counter) = (store.clone(), audit.clone(), Arc::clone(&counter));
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let step = i64::try_from(n).unwrap_or(i64::MAX);
                let stepped = store.advance_totp_step(root_id, step).await.is_ok();
                let row = SessionRow {
                    id: format!("bench-{n}"),
                    token_hash: ring::digest::digest(&ring::digest::SHA256, &n.to_le_bytes())
                        .as_ref()
                        .to_vec(),
                    user_id: root_id,
                    peer_uid: 0,
                    created_at: 0,
                    last_seen_at: 0,
                    elevated_until: None,
                    elevation_method: None,
                    generation: 0,
                };
                let stored = store.insert_session(&row).await.is_ok();
                let audited = audit
                    .record(Actor::user(None, "root"), login_event())
                    .await
                    .is_ok();
                stepped && stored && audited
            }
        }
    })
    .await
}

fn print_row(name: &str, report: &LoadReport, baseline: &LoadReport) {
    println!(
        "{name:<42} {:>9.0} {:>9.0} {:>9.0} {:>7} {:>7.2}",
        report.rate(),
        report.percentile(0.50).as_secs_f64() * 1e6,
        report.percentile(0.99).as_secs_f64() * 1e6,
        report.errors,
        report.rate() / baseline.rate(),
    );
}

fn main() {
    let quick = std::env::var_os("OCCC_BENCH_QUICK").is_some();
    let (warm_up, window) = if quick {
        (Duration::from_millis(200), Duration::from_millis(700))
    } else {
        (Duration::from_millis(500), Duration::from_secs(4))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = DevDir::new();
        let daemon = RunningDaemon::start(&dir).await;
        let root = signed_in_super_admin(&dir, &daemon).await;

        // CreateUser over the socket first, while the daemon owns the store.
        let counter = Arc::new(AtomicU64::new(0));
        let session = Arc::new(root.session);
        let create = run_load(16, warm_up, window, |_| {
            let (session, counter) = (Arc::clone(&session), Arc::clone(&counter));
            move || {
                let (session, counter) = (Arc::clone(&session), Arc::clone(&counter));
                async move {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    session
                        .users()
                        .create_user(pb::CreateUserRequest {
                            username: format!("u{n}"),
                            role: pb::UserRole::Viewer.into(),
                        })
                        .await
                        .is_ok()
                }
            }
        })
        .await;
        drop(session);
        daemon.terminate().await;

        let (store, hasher) = dir.open_store().await;
        let root_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'root'")
            .fetch_one(store.raw_pool())
            .await
            .expect("root");
        let baseline = measure_commits(&store, warm_up, window).await;
        let (audit, writer) = AuditLog::start(
            store.clone(),
            Arc::new(hasher),
            Arc::new(SystemClock),
            Duration::from_secs(5),
            1024,
            Arc::default(),
        )
        .await
        .expect("audit writer");
        let audit_1 = measure_audit(&audit, 1, warm_up, window).await;
        let audit_64 = measure_audit(&audit, 64, warm_up, window).await;
        let logins = measure_login_writes(&store, &audit, root_id, warm_up, window).await;
        writer.finish().await;
        store.close().await;

        println!("writes, synchronous = FULL, real SQLCipher store");
        println!(
            "{:<42} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "target", "per s", "p50 µs", "p99 µs", "errors", "ratio"
        );
        print_row("one-row commit, 1 writer (baseline)", &baseline, &baseline);
        print_row("audit entries, 1 writer", &audit_1, &baseline);
        print_row(
            "audit entries, 64 writers (group commit)",
            &audit_64,
            &baseline,
        );
        print_row("login writes, 16 logins", &logins, &baseline);
        print_row("CreateUser over the socket, 16 clients", &create, &baseline);
        println!(
            "group commit: {:.1} entries per commit-time at 64 writers (ratio to the baseline)",
            audit_64.rate() / baseline.rate()
        );
        for (name, report) in [
            ("baseline", &baseline),
            ("audit", &audit_64),
            ("logins", &logins),
            ("CreateUser", &create),
        ] {
            assert_eq!(report.errors, 0, "{name} calls failed");
        }
    });
}
