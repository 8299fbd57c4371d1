//! Refused calls audited within each peer uid's budget (issue #16: one local
//! user could grow the audit log by hundreds of entries a second with calls
//! the gate refuses): the gate on a real store with an injected clock, and
//! the daemon over its socket.

use std::{sync::Arc, time::Duration};

use occc_client::ClientError;
use occc_tests::{DevDir, RunningDaemon};
use occcd::{
    audit::{AuditLog, ChainHasher, verify_chain},
    auth::AuthEngine,
    clock::{Clock, ManualClock, UnixMillis},
    config::AuthConfig,
    crypto::{KeyPurpose, KeyRing},
    gate::{Authorization, Gate, Refusal, RefusalBudget, record_owed},
    integrity::QuarantineLock,
    store::Store,
    transport::PeerCredentials,
};
use tonic::Code;
use zeroize::Zeroizing;

use crate::support::audit_rows_of_kind;

const VERIFY_CHAIN: &str = "/occc.v1.Audit/VerifyChain";

fn peer(uid: u32) -> Option<PeerCredentials> {
    Some(PeerCredentials {
        uid,
        gid: uid,
        pid: Some(4242),
    })
}

#[tokio::test]
async fn each_uid_gets_its_budget_each_minute_and_the_next_entry_says_what_was_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let master = KeyRing::from_bytes(Zeroizing::new([7; 32]));
    let store = Store::open(
        &dir.path().join("occcd.db"),
        &master.derive(KeyPurpose::Database),
        true,
    )
    .await
    .unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    let hasher = Arc::new(ChainHasher::new(&master.derive(KeyPurpose::AuditChain)));
    let (audit, writer) = AuditLog::start(
        store.clone(),
        Arc::clone(&hasher),
        clock.clone(),
        Duration::from_secs(2),
        64,
        Arc::default(),
    )
    .await
    .unwrap();
    let auth = AuthEngine::start(
        store.clone(),
        &master,
        audit.clone(),
        clock.clone(),
        &AuthConfig::default(),
        dir.path().to_owned(),
    )
    .await
    .unwrap();
    let budget = Arc::new(RefusalBudget::new(3));
    let gate = Gate::new(
        audit.clone(),
        Arc::new(auth),
        clock.clone(),
        QuarantineLock::default(),
        Arc::clone(&budget),
    );
    let gate = &gate;
    let refuse = |uid| async move {
        let refused = gate
            .admit(VERIFY_CHAIN, peer(uid), Authorization::None)
            .await;
        assert_eq!(
            refused.unwrap_err(),
            Refusal::NoSession,
            "refused either way"
        );
    };
    // uid 1000 sends ten: three audited, seven counted; uid 1001's two are
    // its own budget's.
    for _ in 0..10 {
        refuse(1000).await;
    }
    for _ in 0..2 {
        refuse(1001).await;
    }
    // A minute later, uid 1000's next refusal is audited with the count.
    clock.advance(Duration::from_secs(61));
    refuse(1000).await;
    // Five more, two of them counted; nobody refuses them again: the daemon
    // audits the count once their minute is over.
    for _ in 0..4 {
        refuse(1000).await;
    }
    assert!(
        budget.take_owed(clock.now(), false).is_empty(),
        "the minute goes on"
    );
    clock.advance(Duration::from_secs(61));
    record_owed(audit, budget.take_owed(clock.now(), false)).await;
    writer.finish().await;

    let rows = audit_rows_of_kind(&store, "call_refused").await;
    let of = |uid: i64| -> Vec<&str> {
        rows.iter()
            .filter(|(actor, _, _)| *actor == Some(uid))
            .map(|(_, _, detail)| detail.as_str())
            .collect()
    };
    let first_uid = of(1000);
    assert_eq!(first_uid.len(), 3 + 3 + 1, "{rows:?}");
    assert!(!first_uid[1].contains("counted"), "{}", first_uid[1]);
    assert!(
        first_uid[2].contains("further refusals like it of this OS user this minute are counted"),
        "{}",
        first_uid[2]
    );
    assert!(
        first_uid[3]
            .contains("7 earlier refusals like it of this OS user were counted, not audited"),
        "{}",
        first_uid[3]
    );
    assert!(
        first_uid[6].contains("2 refusals of this OS user without a session since"),
        "{}",
        first_uid[6]
    );
    assert_eq!(of(1001).len(), 2, "{rows:?}");
    assert_eq!(
        verify_chain(&store, &hasher).await.unwrap().first_broken,
        None
    );
    store.close().await;
}

#[tokio::test]
async fn over_the_socket_a_flood_of_refused_calls_writes_the_budget_and_stays_refused() {
    let dir = DevDir::new();
    dir.set_config("[audit]\nrefusals_per_minute_per_uid = 4\n");
    let daemon = RunningDaemon::start(&dir).await;
    let client = daemon.client().await;
    for _ in 0..25 {
        let refused = client.verify_audit_chain().await.unwrap_err();
        assert!(
            matches!(refused, ClientError::Rpc(ref status) if status.code() == Code::Unauthenticated),
            "{refused}"
        );
    }
    daemon.terminate().await;
    let (store, hasher) = dir.open_store().await;
    let rows = audit_rows_of_kind(&store, "call_refused").await;
    // Four one by one; the other 21 counted, and audited as a count when
    // the daemon stopped.
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows[3].2.contains("counted, not audited"), "{}", rows[3].2);
    assert!(
        rows[4]
            .2
            .contains("21 refusals of this OS user without a session"),
        "{}",
        rows[4].2
    );
    assert_eq!(
        verify_chain(&store, &hasher).await.unwrap().first_broken,
        None
    );
}
