//! The audit chain: durable under SIGKILL, tamper-evident, never a stall.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use occc_client::ClientError;
use occc_tests::{DevDir, RunningDaemon};
use occcd::audit::verify_chain;
use tonic::Code;

use crate::support::audit_rows_of_kind;

async fn refuse_calls(daemon: &RunningDaemon, count: usize) {
    let client = daemon.client().await;
    for _ in 0..count {
        let err = client.verify_audit_chain().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated),
            "{err}"
        );
    }
}

#[tokio::test]
async fn sigkill_during_a_burst_keeps_every_acknowledged_entry_and_the_chain() {
    let dir = DevDir::new();
    // Every refusal audited (the default budget counts most of a burst).
    dir.set_config("[audit]\nrefusals_per_minute_per_uid = 1000000\n");
    let daemon = RunningDaemon::start(&dir).await;
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let client = daemon.client().await;
        let acknowledged = Arc::clone(&acknowledged);
        senders.push(tokio::spawn(async move {
            // Each UNAUTHENTICATED answer is sent only after its audit entry committed.
            while let Err(ClientError::Rpc(status)) = client.verify_audit_chain().await {
                if status.code() != Code::Unauthenticated {
                    break;
                }
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while acknowledged.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.kill_hard();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.load(Ordering::SeqCst);

    let restarted = RunningDaemon::start(&dir).await;
    let (store, hasher) = dir.open_store().await;
    let report = verify_chain(&store, &hasher).await.unwrap();
    assert_eq!(report.first_broken, None);
    let stored = audit_rows_of_kind(&store, "call_refused").await.len() as u64;
    assert!(
        stored >= acknowledged,
        "{stored} entries stored, {acknowledged} acknowledged"
    );
    drop(restarted);
}

#[tokio::test]
async fn an_edited_entry_is_named_by_verify() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    refuse_calls(&daemon, 8).await;
    daemon.terminate().await;
    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(status.success(), "{output}");
    assert!(output.contains("intact: 10 entries"), "{output}");

    let (store, hasher) = dir.open_store().await;
    // Someone with the key can drop the append-only trigger; the chain still tells.
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(store.raw_pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = replace(detail, 'no session', 'all fine') WHERE sequence = 5")
        .execute(store.raw_pool())
        .await
        .unwrap();
    let broken = verify_chain(&store, &hasher)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.sequence, 5);
    assert!(
        broken.reason.contains("does not match its contents"),
        "{}",
        broken.reason
    );
    store.close().await;

    let (status, output) = dir.run_occcd(&["audit", "verify"]).await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("broken at entry 5"), "{output}");
}

#[tokio::test]
async fn a_deleted_entry_is_named_by_verify() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    refuse_calls(&daemon, 4).await;
    daemon.terminate().await;
    let (store, hasher) = dir.open_store().await;
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(store.raw_pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE sequence = 3")
        .execute(store.raw_pool())
        .await
        .unwrap();
    let broken = verify_chain(&store, &hasher)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.sequence, 3);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);
}

#[tokio::test]
async fn the_append_only_triggers_refuse_edits() {
    let dir = DevDir::new();
    RunningDaemon::start(&dir).await.terminate().await;
    let (store, _) = dir.open_store().await;
    let err = sqlx::query("UPDATE audit_log SET kind = 'x'")
        .execute(store.raw_pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(store.raw_pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn a_blocked_audit_disk_delays_a_call_by_the_timeout_not_forever() {
    let dir = DevDir::new();
    dir.set_config("[audit]\nwrite_timeout_ms = 300\n");
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;

    // Hold SQLite's write lock from another connection: the writer cannot commit.
    let (store, hasher) = dir.open_store().await;
    let mut blocker = store.raw_pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = Instant::now();
    let err = client.verify_audit_chain().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated),
        "{err}"
    );
    // Without the bound the writer would wait out SQLite's 5 s busy timeout.
    assert!(waited < Duration::from_secs(4), "call waited {waited:?}");
    sqlx::query("ROLLBACK")
        .execute(&mut *blocker)
        .await
        .unwrap();
    drop(blocker);

    client.health().await.expect("daemon still serving");
    assert!(
        dir.log().contains("audit entry lost"),
        "the lost entry is logged:\n{}",
        dir.log()
    );
    refuse_calls(&daemon, 1).await;
    assert_eq!(
        verify_chain(&store, &hasher).await.unwrap().first_broken,
        None
    );
}
