//! VerifyChain, which reads and hashes the whole audit log: one at a time
//! per OS user, the last place kept for administrators, and dropped —
//! unanswered, its place given back — as soon as its caller is logged out.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use occc_client::{ClientError, OcccClient, proto as pb};
use occc_tests::{
    DevDir,
    generated_audit::{GeneratedAudit, OverGeneratedAudit, super_admin_over_generated_audit},
    os_user::{ensure_other_user, is_root, peer_as, socket_group_config},
    people::{
        GOOD_PASSWORD, elevate_with_recovery_code, invite, log_in, log_in_with_recovery_code,
    },
    skip,
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
    if is_root() {
        // Another OS user joins at the end.
        dir.set_config(&socket_group_config());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    }
    let shape = GeneratedAudit {
        count: ENTRIES,
        users: 100,
        rare_every: 1_000,
    };
    let OverGeneratedAudit {
        daemon,
        anonymous,
        person: mut root,
        session,
    } = super_admin_over_generated_audit(&dir, "root", shape).await;
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

    if is_root() {
        elevate_with_recovery_code(&again, &mut root).await;
        operators_leave_the_last_place_to_administrators(&dir, &anonymous, &again).await;
    } else {
        skip::unavailable(
            "chain_verifications_run_one_per_uid_and_end_with_their_session (operators)",
            "root (it switches to another OS user)",
        );
    }
    daemon.terminate().await;
}

/// An operator of another OS user verifies; an operator of this one is
/// refused while that runs — the other place is kept for administrators —
/// and the super-admin of this one is served.
async fn operators_leave_the_last_place_to_administrators(
    dir: &DevDir,
    anonymous: &OcccClient,
    root: &OcccClient,
) {
    let (other_uid, _) = ensure_other_user();
    let olga = root
        .users()
        .create_user(pb::CreateUserRequest {
            username: "olga".into(),
            role: pb::UserRole::Operator.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut oscar = invite(root, anonymous, "oscar", pb::UserRole::Operator).await;
    let oscar = log_in(anonymous, &mut oscar).await;
    let socket = dir.socket();
    let other = tokio::spawn(async move {
        let args = [
            "enrol-and-verify-chain",
            "olga",
            olga.enrollment_token.as_str(),
            GOOD_PASSWORD,
        ];
        peer_as(other_uid, &socket, &args).await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        match oscar.verify_audit_chain().await {
            // Olga's is not running yet, or ended: let her retry take it.
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(refused) => break refusal(Err(refused)),
        }
        assert!(Instant::now() < deadline, "olga's verification never ran");
    };
    // Olga's runs: the one place left is an administrator's.
    let served = root.verify_audit_chain().await;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("kept for administrators"),
        "{refused:?}"
    );
    assert!(served.is_ok(), "the super-admin is served: {served:?}");
    let answer = other.await.unwrap();
    assert!(answer.starts_with("ok verified"), "{answer}");
}
