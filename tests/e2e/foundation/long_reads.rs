//! VerifyChain, which reads and hashes the whole audit log: one at a time
//! per OS user, and dropped — unanswered, its place given back — as soon as
//! its caller is logged out.

use std::time::Instant;

use occc_client::{ClientError, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    generated_audit::{GeneratedAudit, append_generated_audit},
    people::{bootstrap_super_admin, log_in_with_recovery_code},
};
use tonic::Code;

/// Entries generated: a verification of them takes seconds in a debug build.
const ENTRIES: u64 = 200_000;

fn refusal(result: Result<pb::VerifyChainResponse, ClientError>) -> tonic::Status {
    match result {
        Err(ClientError::Rpc(status)) => status,
        other => panic!("a refusal, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_verifications_run_one_per_uid_and_end_with_their_session() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    drop(anonymous);
    daemon.terminate().await;
    let (store, hasher) = dir.open_store().await;
    let shape = GeneratedAudit {
        count: ENTRIES,
        users: 100,
        rare_every: 1_000,
    };
    append_generated_audit(&store, &hasher, shape).await;
    store.close().await;

    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let started = Instant::now();
    let (first, second) = tokio::join!(session.verify_audit_chain(), session.verify_audit_chain());
    let whole = started.elapsed();
    let (report, refused) = match (first, second) {
        (Ok(report), refused) | (refused, Ok(report)) => (report, refusal(refused)),
        other => panic!("one verification runs, the other is refused: {other:?}"),
    };
    assert!(report.entries_checked > ENTRIES, "{report:?}");
    assert_eq!(report.first_broken, None);
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("audit chain verifications running"),
        "{refused:?}"
    );

    // Logged out a quarter of the way through: it ends then, unanswered.
    let verifying = tokio::spawn({
        let session = session.clone();
        async move { session.verify_audit_chain().await }
    });
    tokio::time::sleep(whole / 4).await;
    session
        .auth()
        .logout(pb::LogoutRequest {})
        .await
        .expect("logout");
    let logged_out = Instant::now();
    let ended = refusal(verifying.await.expect("the verifying task"));
    let answered_after = logged_out.elapsed();
    println!(
        "a whole verification took {:.2} s; the logged-out one ended {:.3} s after the logout",
        whole.as_secs_f64(),
        answered_after.as_secs_f64()
    );
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    // Dropped at the logout, not refused after running to its end (three
    // quarters of a whole verification were left).
    assert!(
        answered_after < whole / 2,
        "answered {answered_after:?} after the logout"
    );

    // Its place went with it: the uid's next verification runs.
    let again = log_in_with_recovery_code(&anonymous, &mut root).await;
    let report = again
        .verify_audit_chain()
        .await
        .expect("a new verification");
    assert_eq!(report.first_broken, None);
    daemon.terminate().await;
}
