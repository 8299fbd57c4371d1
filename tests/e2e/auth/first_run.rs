//! The first-run path and the login factors, end to end.

use std::{fs, os::unix::fs::PermissionsExt};

use occc_client::{ClientError, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{GOOD_PASSWORD, bootstrap_super_admin, bootstrap_token, log_in},
};
use tonic::Code;

fn login_request(username: &str, factor: pb::login_request::SecondFactor) -> pb::LoginRequest {
    pb::LoginRequest {
        username: username.to_owned(),
        password: GOOD_PASSWORD.to_owned(),
        second_factor: Some(factor),
    }
}

#[tokio::test]
async fn bootstrap_enrol_with_oathtool_login_call_logout() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let token_file = dir.path().join("state").join("bootstrap.token");
    assert_eq!(
        fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        dir.log().contains("bootstrap.token"),
        "the daemon names the token file"
    );
    assert!(
        !dir.log().contains(&bootstrap_token(&dir)),
        "but never logs the token"
    );

    let anonymous = daemon.client().await;
    let mut admin = bootstrap_super_admin(&dir, &anonymous, "root-admin").await;
    assert_eq!(admin.recovery_codes.len(), 10);
    assert!(!token_file.exists(), "the used bootstrap token is gone");

    let session = log_in(&anonymous, &mut admin).await;
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    let user = me.user.unwrap();
    assert_eq!(user.username, "root-admin");
    assert_eq!(user.role(), pb::UserRole::SuperAdmin);
    assert_eq!(user.state(), pb::UserState::Active);
    assert!(me.permissions.contains(&"manage_users".to_owned()));
    assert_eq!(me.session.unwrap().elevated_until_unix_ms, None);
    let report = session
        .verify_audit_chain()
        .await
        .expect("a logged-in super-admin may verify the audit chain");
    assert_eq!(report.first_broken, None);

    session.auth().logout(pb::LogoutRequest {}).await.unwrap();
    let err = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn bootstrap_is_closed_once_a_user_exists_and_the_token_works_once() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let token = bootstrap_token(&dir);
    bootstrap_super_admin(&dir, &anonymous, "first").await;
    let again = anonymous
        .auth()
        .bootstrap(pb::BootstrapRequest {
            bootstrap_token: token,
            username: "second".into(),
            password: GOOD_PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated, "{}", again.message());
    drop(daemon);
    let restarted = RunningDaemon::start(&dir).await;
    assert!(
        !dir.path().join("state").join("bootstrap.token").exists(),
        "no new token once a user exists"
    );
    drop(restarted);
}

#[tokio::test]
async fn a_replayed_totp_code_is_refused_and_recovery_codes_work_once() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut admin = bootstrap_super_admin(&dir, &anonymous, "admin").await;
    log_in(&anonymous, &mut admin).await;

    let replay = pb::login_request::SecondFactor::TotpCode(admin.device.replay_last());
    let err = anonymous
        .auth()
        .login(login_request("admin", replay))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "replayed code: {}",
        err.message()
    );

    let code = admin.recovery_codes[0].clone();
    let first = pb::login_request::SecondFactor::RecoveryCode(code.clone());
    let response = anonymous
        .auth()
        .login(login_request("admin", first))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.user.clone().unwrap().recovery_codes_left, 9);
    let again = pb::login_request::SecondFactor::RecoveryCode(code);
    let err = anonymous
        .auth()
        .login(login_request("admin", again))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "a recovery code works once"
    );
}

#[tokio::test]
async fn an_account_is_not_usable_before_its_totp_is_confirmed() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let started = anonymous
        .auth()
        .bootstrap(pb::BootstrapRequest {
            bootstrap_token: bootstrap_token(&dir),
            username: "pending".into(),
            password: GOOD_PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let secret = started.totp.clone().unwrap().secret_base32.clone();
    let code = occc_tests::people::TotpDevice::new(&secret).next_code();
    let err = anonymous
        .auth()
        .login(login_request(
            "pending",
            pb::login_request::SecondFactor::TotpCode(code),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(matches!(ClientError::from(err), ClientError::Rpc(_)));
}

#[tokio::test]
async fn sessions_survive_a_daemon_restart() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let mut admin = bootstrap_super_admin(&dir, &daemon.client().await, "admin").await;
    let token = log_in(&daemon.client().await, &mut admin)
        .await
        .session()
        .unwrap()
        .clone();
    daemon.terminate().await;
    let restarted = RunningDaemon::start(&dir).await;
    let session = restarted.client().await.with_session(token);
    let me = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("session restored");
    assert_eq!(me.into_inner().user.unwrap().username, "admin");
}
