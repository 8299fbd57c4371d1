//! What survives a restart or a crash (issue #9, items 9 and 11): failure
//! counters and locks, the failure of a check the crash cut short, and
//! sessions with their last-seen times.

use occc_client::proto as pb;
use occc_tests::{
    CHEAP_ARGON2, DevDir, RunningDaemon,
    os_user::ensure_login_user,
    pam_stack::{ScriptedPerson, held_sensor},
    people::{Person, bootstrap_super_admin, elevate, invite, log_in},
};
use tonic::Code;

use super::pam::{FINGER_USER, UNIX_PASSWORD, linked_user, skip_unless_root};

fn wrong_password(username: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        username: username.to_owned(),
        password: "definitely-not-the-password".to_owned(),
        second_factor: Some(pb::login_request::SecondFactor::TotpCode(
            "123456".to_owned(),
        )),
    }
}

async fn right_password(client: &occc_client::OcccClient, person: &mut Person) -> tonic::Code {
    let request = pb::LoginRequest {
        username: person.username.clone(),
        password: person.password.clone(),
        second_factor: Some(pb::login_request::SecondFactor::TotpCode(
            person.device.next_code(),
        )),
    };
    match client.auth().login(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn failure_counters_and_locks_survive_restarts_and_crashes() {
    let dir = DevDir::new();
    dir.set_config_with_auth(&format!("{CHEAP_ARGON2}account_lock_after = 3\n"), "");
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut alice = invite(&admin, &anonymous, "alice", pb::UserRole::Viewer).await;
    let mut bob = invite(&admin, &anonymous, "bob", pb::UserRole::Viewer).await;
    for _ in 0..3 {
        let err = anonymous
            .auth()
            .login(wrong_password("alice"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // Two of bob's three allowed failures, then the daemon is killed.
    for _ in 0..2 {
        anonymous
            .auth()
            .login(wrong_password("bob"))
            .await
            .unwrap_err();
    }
    daemon.kill_hard();

    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    assert_eq!(
        right_password(&anonymous, &mut alice).await,
        Code::ResourceExhausted,
        "still locked after a crash"
    );
    // Bob's third failure locks him: the first two were kept.
    anonymous
        .auth()
        .login(wrong_password("bob"))
        .await
        .unwrap_err();
    assert_eq!(
        right_password(&anonymous, &mut bob).await,
        Code::ResourceExhausted
    );
    daemon.terminate().await;

    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    assert_eq!(
        right_password(&anonymous, &mut alice).await,
        Code::ResourceExhausted,
        "still locked after a clean restart"
    );
    daemon.terminate().await;
}

#[tokio::test]
async fn a_check_cut_short_by_a_crash_stays_counted() {
    if skip_unless_root("a_check_cut_short_by_a_crash_stays_counted") {
        return;
    }
    ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let sensor = held_sensor("crash");
    sensor.set_verdict("match");
    let dir = DevDir::new();
    dir.set_config(&sensor.config(20_000));
    let daemon = RunningDaemon::start(&dir).await;
    let (anonymous, _alice, _) = linked_user(&dir, &daemon, "alice", FINGER_USER).await;
    let login = tokio::spawn(async move {
        let person = ScriptedPerson::answering(&[]);
        anonymous.login_with_pam("alice", &person).await
    });
    sensor.wait_until_held().await;
    daemon.kill_hard();
    assert!(login.await.unwrap().is_err());
    sensor.release();

    let (store, _) = dir.open_store().await;
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, consecutive FROM auth_failures WHERE subject LIKE 'alice%' ORDER BY kind",
    )
    .fetch_all(store.raw_pool())
    .await
    .unwrap();
    store.close().await;
    assert_eq!(counted, [("biometric".to_owned(), 1)]);
}

#[tokio::test]
async fn sessions_keep_their_last_use_across_a_restart() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in(&anonymous, &mut root).await;
    let token = session.session().unwrap().clone();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let used = session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
        .last_seen_unix_ms;
    daemon.terminate().await;

    let (store, _) = dir.open_store().await;
    let (created, last_seen): (i64, i64) =
        sqlx::query_as("SELECT created_at, last_seen_at FROM sessions")
            .fetch_one(store.raw_pool())
            .await
            .unwrap();
    store.close().await;
    assert!(last_seen > created, "{created} {last_seen}");
    assert_eq!(last_seen, used, "the last use was written at shutdown");

    let daemon = RunningDaemon::start(&dir).await;
    let again = daemon.client().await.with_session(token);
    let me = again.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    assert_eq!(me.into_inner().user.unwrap().username, "root");
    daemon.terminate().await;
}
