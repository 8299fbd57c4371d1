//! Brute-force defence over the socket: a locked account costs no hashing,
//! other accounts still log in, a super-admin sees and lifts the lock.

use occc_client::proto as pb;
use occc_tests::{
    CHEAP_ARGON2, DevDir, RunningDaemon,
    people::{bootstrap_super_admin, elevate, invite, log_in},
};
use tonic::Code;

/// Argon2 computations the daemon has logged so far.
fn hashes_logged(dir: &DevDir) -> usize {
    dir.log().matches("argon2 computation started").count()
}

fn wrong_password(username: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        username: username.to_owned(),
        password: "definitely-not-the-password".to_owned(),
        second_factor: Some(pb::login_request::SecondFactor::TotpCode(
            "123456".to_owned(),
        )),
    }
}

#[tokio::test]
async fn hammering_one_account_locks_it_without_hashing_and_spares_the_others() {
    let dir = DevDir::new();
    dir.set_config_with_auth(&format!("{CHEAP_ARGON2}account_lock_after = 3\n"), "");
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let _alice = invite(&admin, &anonymous, "alice", pb::UserRole::Viewer).await;
    let mut bob = invite(&admin, &anonymous, "bob", pb::UserRole::Viewer).await;

    for _ in 0..3 {
        let err = anonymous
            .auth()
            .login(wrong_password("alice"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let hashes_before = hashes_logged(&dir);
    for _ in 0..50 {
        let err = anonymous
            .auth()
            .login(wrong_password("alice"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("locked"), "{}", err.message());
    }
    assert_eq!(
        hashes_logged(&dir),
        hashes_before,
        "refused attempts must not hash"
    );

    log_in(&anonymous, &mut bob).await;

    let users = admin
        .users()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .users;
    let alice = users.iter().find(|u| u.username == "alice").unwrap();
    assert!(
        alice.locked_until_unix_ms.is_some(),
        "the lock is visible to admins"
    );
    let unlocked = admin
        .users()
        .unlock_user(pb::UserRef {
            username: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unlocked.locked_until_unix_ms, None);
    let err = anonymous
        .auth()
        .login(wrong_password("alice"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "checked again after unlock"
    );
}

#[tokio::test]
async fn unknown_users_cost_the_same_hashing_and_get_the_same_answer() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in(&anonymous, &mut root).await;
    elevate(&session, &mut root).await;
    // One account still enrolling, one disabled.
    session
        .users()
        .create_user(pb::CreateUserRequest {
            username: "eve".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap();
    invite(&session, &anonymous, "dan", pb::UserRole::Viewer).await;
    session
        .users()
        .disable_user(pb::UserRef {
            username: "dan".into(),
        })
        .await
        .unwrap();

    let mut answers = Vec::new();
    for username in ["root", "nobody", "eve", "dan"] {
        let before = hashes_logged(&dir);
        let refused = anonymous
            .auth()
            .login(wrong_password(username))
            .await
            .unwrap_err();
        assert_eq!(
            hashes_logged(&dir) - before,
            1,
            "{username}: one Argon2 verification, as for an active account"
        );
        answers.push((username, refused.code(), refused.message().to_owned()));
    }
    let (_, code, message) = &answers[0];
    for (username, other_code, other_message) in &answers[1..] {
        assert_eq!(
            (other_code, other_message),
            (code, message),
            "{username} is answered as a wrong password for an active account"
        );
    }
}

#[tokio::test]
async fn concurrent_guesses_on_one_account_are_checked_one_at_a_time() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    bootstrap_super_admin(&dir, &anonymous, "root").await;
    let before = hashes_logged(&dir);
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let client = anonymous.clone();
            tokio::spawn(async move {
                client
                    .auth()
                    .login(wrong_password("root"))
                    .await
                    .unwrap_err()
                    .code()
            })
        })
        .collect();
    let mut checked = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Code::Unauthenticated => checked += 1,
            Code::ResourceExhausted => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        hashes_logged(&dir) - before,
        checked,
        "only checked attempts hash"
    );
    assert!(
        checked <= 3,
        "{checked} of 40 concurrent guesses were checked; the rest must wait their turn"
    );
}
