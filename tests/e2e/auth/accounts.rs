//! Account administration and self-service over the socket: revocation,
//! disabling, recovery-code regeneration, re-hashing, and their audit trail.

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{
        GOOD_PASSWORD, bootstrap_super_admin, elevate, elevate_with_totp, invite, log_in,
        log_in_with_recovery_code,
    },
};
use tonic::Code;

use crate::support::audit_rows_of_kind;

#[tokio::test]
async fn revocation_disabling_and_role_changes_end_sessions_and_are_audited() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut ops = invite(&admin, &anonymous, "ops", pb::UserRole::Operator).await;

    let ops_session = log_in(&anonymous, &mut ops).await;
    let all = admin
        .users()
        .list_all_sessions(pb::ListAllSessionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let ops_id = all
        .sessions
        .iter()
        .find(|s| s.username == "ops")
        .unwrap()
        .session_id
        .clone();
    let revoked = admin
        .users()
        .revoke_session(pb::RevokeSessionRequest { session_id: ops_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked, 1);
    let err = ops_session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let ops_session = log_in(&anonymous, &mut ops).await;
    admin
        .users()
        .set_user_role(pb::SetUserRoleRequest {
            username: "ops".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap();
    let err = ops_session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "a role change ends the user's sessions"
    );

    admin
        .users()
        .disable_user(pb::UserRef {
            username: "ops".into(),
        })
        .await
        .unwrap();
    let err = anonymous
        .auth()
        .login(pb::LoginRequest {
            username: "ops".into(),
            password: GOOD_PASSWORD.into(),
            // Refused at the password stage; the code is never looked at.
            second_factor: Some(pb::login_request::SecondFactor::TotpCode("000000".into())),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "a disabled user cannot log in"
    );
    // A super-admin resets others' TOTP, not their own (that is a
    // re-enrolment, which needs the current TOTP).
    let err = admin
        .users()
        .reset_totp(pb::UserRef {
            username: "root".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // A deleted user's name (and, often, id) can be used again: the new
    // account starts afresh.
    admin
        .users()
        .delete_user(pb::UserRef {
            username: "ops".into(),
        })
        .await
        .unwrap();
    let mut again = invite(&admin, &anonymous, "ops", pb::UserRole::Operator).await;
    log_in(&anonymous, &mut again)
        .await
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("the new ops logs in");
    let err = admin
        .users()
        .disable_user(pb::UserRef {
            username: "root".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the last super-admin cannot be disabled"
    );

    let (store, _) = dir.open_store().await;
    for kind in [
        "login_succeeded",
        "elevated",
        "user_created",
        "sessions_revoked",
        "role_changed",
        "user_disabled",
    ] {
        let rows = audit_rows_of_kind(&store, kind).await;
        assert!(!rows.is_empty(), "no {kind} entry in the audit log");
    }
    let failed = audit_rows_of_kind(&store, "login_failed").await;
    assert!(
        failed
            .iter()
            .any(|(uid, _, detail)| uid.is_some() && detail.contains("ops")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn regenerated_recovery_codes_replace_the_old_set() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    let other = log_in_with_recovery_code(&anonymous, &mut root).await;
    let err = admin
        .auth()
        .regenerate_recovery_codes(pb::RegenerateRecoveryCodesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("re-authentication"),
        "{}",
        err.message()
    );
    // A TOTP code alone does not let anyone replace a credential.
    elevate_with_totp(&admin, &mut root).await;
    let err = admin
        .auth()
        .regenerate_recovery_codes(pb::RegenerateRecoveryCodesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.metadata().get("occc-denial").unwrap(),
        "password-elevation-required"
    );
    elevate(&admin, &mut root).await;
    let fresh = admin
        .auth()
        .regenerate_recovery_codes(pb::RegenerateRecoveryCodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .codes
        .clone();
    assert_eq!(fresh.len(), 10);
    // The other session ended; this one goes on.
    let err = other
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    admin.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    let login_with = |code: String| pb::LoginRequest {
        username: "root".into(),
        password: GOOD_PASSWORD.into(),
        second_factor: Some(pb::login_request::SecondFactor::RecoveryCode(code)),
    };
    let err = anonymous
        .auth()
        .login(login_with(root.recovery_codes[0].clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "old codes stop working");
    anonymous
        .auth()
        .login(login_with(fresh[0].clone()))
        .await
        .expect("new codes work");
    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    let revoked = audit_rows_of_kind(&store, "sessions_revoked").await;
    assert!(
        revoked
            .iter()
            .any(|(_, _, detail)| detail.contains("1 other sessions ended: recovery codes changed")),
        "{revoked:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_password_is_rehashed_when_the_cost_changes() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let mut root = bootstrap_super_admin(&dir, &daemon.client().await, "root").await;
    daemon.terminate().await;
    let phc = || async {
        let (store, _) = dir.open_store().await;
        let (phc,): (String,) =
            sqlx::query_as("SELECT password_phc FROM users WHERE username = 'root'")
                .fetch_one(store.raw_pool())
                .await
                .unwrap();
        store.close().await;
        phc
    };
    assert!(phc().await.contains("m=8192,t=1,p=1"), "{}", phc().await);
    dir.set_config_with_auth(
        "argon2_iterations = 2\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n",
        "",
    );
    let daemon = RunningDaemon::start(&dir).await;
    log_in(&daemon.client().await, &mut root).await;
    daemon.terminate().await;
    assert!(
        phc().await.contains("m=8192,t=2,p=1"),
        "rehashed at the new cost: {}",
        phc().await
    );
}

#[tokio::test]
async fn totp_reenrolment_replaces_the_secret_after_confirmation() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in(&anonymous, &mut root).await;
    let other = log_in_with_recovery_code(&anonymous, &mut root).await;
    elevate(&session, &mut root).await;
    let enrolment = session
        .auth()
        .start_totp_reenrollment(pb::StartTotpReenrollmentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(enrolment.qr_png.starts_with(b"\x89PNG"));
    let mut new_device = occc_tests::people::TotpDevice::new(&enrolment.secret_base32);
    let wrong = session
        .auth()
        .confirm_totp_reenrollment(pb::ConfirmTotpReenrollmentRequest {
            totp_code: root.device.replay_last(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        wrong.code(),
        Code::Unauthenticated,
        "a code from the old secret does not confirm"
    );
    session
        .auth()
        .confirm_totp_reenrollment(pb::ConfirmTotpReenrollmentRequest {
            totp_code: new_device.next_code(),
        })
        .await
        .unwrap();
    // Every other session ended, and so did the TOTP-based elevation of
    // this one: the factor it re-proved is gone.
    let err = other
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.session.unwrap().elevated_until_unix_ms, None);
    let old_device = root.device.clone();
    root.device = new_device;
    log_in(&anonymous, &mut root).await;
    let err = anonymous
        .auth()
        .login(pb::LoginRequest {
            username: "root".into(),
            password: GOOD_PASSWORD.into(),
            second_factor: Some(pb::login_request::SecondFactor::TotpCode(
                old_device.replay_last(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "the old secret no longer works"
    );
}
