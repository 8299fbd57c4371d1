//! Domain-level tests of the bootstrap, login and administration flows:
//! the real engine on a real SQLCipher store and audit log, time injected
//! with `ManualClock` (no sleeping; expiries reached by advancing it).

use std::time::Duration;

use super::{
    admin::{ActingUser, MAX_USERS_PAGE},
    error::AuthError,
    login::SecondFactor,
    role::Role,
    test_harness::{PASSWORD, PEER, harness, secret_of},
};
use crate::{config::AuthConfig, store::Store, transport::PeerCredentials};

#[tokio::test]
async fn the_bootstrap_token_expires_and_opens_the_daemon_once() {
    let h = harness().await;
    let token = h.bootstrap_token();
    let wrong = h
        .engine
        .enrolment()
        .bootstrap(Some(PEER), "occb_not-the-token", "root", PASSWORD)
        .await;
    assert!(
        matches!(wrong, Err(AuthError::BadToken("bootstrap"))),
        "{wrong:?}"
    );
    // At the end of its lifetime the right token opens nothing.
    h.clock.advance(Duration::from_secs(
        AuthConfig::default().bootstrap_token_ttl_secs,
    ));
    let late = h
        .engine
        .enrolment()
        .bootstrap(Some(PEER), &token, "root", PASSWORD)
        .await;
    assert!(
        matches!(late, Err(AuthError::BadToken("bootstrap"))),
        "{late:?}"
    );
    h.finish().await;

    let h = harness().await;
    let token = h.bootstrap_token();
    // A second before the end it still opens the daemon, once.
    h.clock.advance(Duration::from_secs(
        AuthConfig::default().bootstrap_token_ttl_secs - 1,
    ));
    h.root().await;
    // Used once: the token file is gone and the token opens nothing more.
    assert!(!h.dir.path().join("bootstrap.token").exists());
    let again = h
        .engine
        .enrolment()
        .bootstrap(Some(PEER), &token, "eve", PASSWORD)
        .await;
    assert!(
        matches!(
            again,
            Err(AuthError::BadToken("bootstrap") | AuthError::BootstrapClosed)
        ),
        "{again:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_login_needs_both_factors_and_repeated_failures_are_delayed() {
    let h = harness().await;
    let secret = h.root().await;
    let outcome = h.log_in("root", &secret).await;
    assert_eq!(outcome.session.role, Role::SuperAdmin);
    assert!(
        h.engine
            .authenticate(outcome.token.expose(), PEER.uid)
            .is_ok()
    );
    // The same step's code again is a replay.
    let code = h.code(&secret);
    let replay = h
        .engine
        .logins()
        .login(PEER, "root", PASSWORD, SecondFactor::Totp(&code))
        .await;
    assert!(
        matches!(replay, Err(AuthError::BadCredentials)),
        "{replay:?}"
    );
    // The right password with a wrong code is refused too.
    h.clock.advance(Duration::from_secs(30));
    let wrong_code = if h.code(&secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let one_factor = h
        .engine
        .logins()
        .login(PEER, "root", PASSWORD, SecondFactor::Totp(wrong_code))
        .await;
    assert!(
        matches!(one_factor, Err(AuthError::BadCredentials)),
        "{one_factor:?}"
    );
    // Three wrong passwords, then the account answers "wait" without
    // checking — until the clock has moved past the delay.
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(30));
        let code = h.code(&secret);
        let wrong = h
            .engine
            .logins()
            .login(
                PEER,
                "root",
                "Wrong-horse-battery-42",
                SecondFactor::Totp(&code),
            )
            .await;
        assert!(matches!(wrong, Err(AuthError::BadCredentials)), "{wrong:?}");
    }
    let code = h.code(&secret);
    let delayed = h
        .engine
        .logins()
        .login(PEER, "root", PASSWORD, SecondFactor::Totp(&code))
        .await;
    assert!(
        matches!(delayed, Err(AuthError::Throttled { .. })),
        "{delayed:?}"
    );
    let outcome = h.log_in("root", &secret).await;
    assert_eq!(outcome.user.username, "root");
    h.finish().await;
}

#[tokio::test]
async fn a_demotion_ends_the_accounts_sessions_and_the_last_super_admin_stays() {
    let h = harness().await;
    let root_secret = h.root().await;
    let root = h.log_in("root", &root_secret).await;
    let by = ActingUser {
        session: &root.session,
        peer: PEER,
    };
    // Root cannot demote, disable or delete the only active super-admin.
    let alone = h.engine.admin().set_role(by, "root", Role::Admin).await;
    assert!(
        matches!(alone, Err(AuthError::LastSuperAdmin(_))),
        "{alone:?}"
    );
    let disabled = h.engine.admin().set_enabled(by, "root", false).await;
    assert!(
        matches!(disabled, Err(AuthError::LastSuperAdmin(_))),
        "{disabled:?}"
    );
    let deleted = h.engine.admin().delete_user(by, "root").await;
    assert!(
        matches!(deleted, Err(AuthError::LastSuperAdmin(_))),
        "{deleted:?}"
    );

    let (_, enrolment, _) = h
        .engine
        .admin()
        .create_user(by, "ada", Role::Admin)
        .await
        .unwrap();
    let totp = h
        .engine
        .enrolment()
        .start_enrollment(Some(PEER), enrolment.expose(), PASSWORD)
        .await
        .unwrap();
    let ada_secret = secret_of(&totp.secret_base32);
    let code = h.code(&ada_secret);
    h.engine
        .enrolment()
        .confirm_enrollment(Some(PEER), enrolment.expose(), &code)
        .await
        .unwrap();
    let ada = h.log_in("ada", &ada_secret).await;
    assert!(h.engine.authenticate(ada.token.expose(), PEER.uid).is_ok());
    // Nor may anyone reset its TOTP (it would stop being active).
    let by_ada = ActingUser {
        session: &ada.session,
        peer: PEER,
    };
    let reset = h.engine.admin().reset_totp(by_ada, "root").await;
    assert!(
        matches!(reset, Err(AuthError::LastSuperAdmin(_))),
        "{reset:?}"
    );
    assert!(h.engine.authenticate(root.token.expose(), PEER.uid).is_ok());

    let profile = h
        .engine
        .admin()
        .set_role(by, "ada", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(profile.role, Role::Viewer);
    // Her session carried the old role: it is gone, not demoted in place.
    let ended = h.engine.authenticate(ada.token.expose(), PEER.uid);
    assert!(ended.is_err(), "{ended:?}");
    let again = h.log_in("ada", &ada_secret).await;
    assert_eq!(again.session.role, Role::Viewer);
    h.finish().await;
}

#[tokio::test]
async fn profiles_answer_from_memory_but_never_after_a_write() {
    let h = harness().await;
    let secret = h.root().await;
    let root = h.log_in("root", &secret).await;
    let by = ActingUser {
        session: &root.session,
        peer: PEER,
    };
    let me = h.engine.logins().who_am_i(&root.session).await.unwrap();
    assert_eq!(me.role, Role::SuperAdmin);
    assert_eq!(h.engine.logins().who_am_i(&root.session).await.unwrap(), me);
    assert_eq!(
        h.engine
            .admin()
            .list_users(0, "")
            .await
            .unwrap()
            .users
            .len(),
        1
    );
    // Writes show at once: a new account, then its new role.
    h.engine
        .admin()
        .create_user(by, "ada", Role::Admin)
        .await
        .unwrap();
    let users = h.engine.admin().list_users(0, "").await.unwrap().users;
    assert_eq!(users.len(), 2, "{users:?}");
    h.engine
        .admin()
        .set_role(by, "ada", Role::Viewer)
        .await
        .unwrap();
    let users = h.engine.admin().list_users(0, "").await.unwrap().users;
    let ada = users.iter().find(|u| u.username == "ada").unwrap();
    assert_eq!(ada.role, Role::Viewer);
    h.finish().await;
}

#[tokio::test]
async fn users_are_listed_in_pages_by_name_without_overlap() {
    let h = harness().await;
    let secret = h.root().await;
    let root = h.log_in("root", &secret).await;
    let by = ActingUser {
        session: &root.session,
        peer: PEER,
    };
    for name in ["eve", "bob", "dan", "ada", "cy"] {
        h.engine
            .admin()
            .create_user(by, name, Role::Viewer)
            .await
            .unwrap();
    }
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = h.engine.admin().list_users(2, &token).await.unwrap();
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.username));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["ada", "bob", "cy", "dan", "eve", "root"]);
    assert_eq!(pages, 4, "three full pages, then an empty last one");
    // A user created between pages shows on the page its name falls in.
    let first = h.engine.admin().list_users(2, "").await.unwrap();
    h.engine
        .admin()
        .create_user(by, "dora", Role::Viewer)
        .await
        .unwrap();
    let second = h
        .engine
        .admin()
        .list_users(3, &first.next_page_token)
        .await
        .unwrap();
    let names: Vec<_> = second.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["cy", "dan", "dora"]);
    for bad in ["Bob", "../x", "a\n"] {
        assert!(matches!(
            h.engine.admin().list_users(2, bad).await,
            Err(AuthError::InvalidInput {
                field: "page_token",
                ..
            })
        ));
    }
    // However many are asked for, a page holds at most MAX_USERS_PAGE.
    let mut tx = h.store.raw_pool().begin().await.unwrap();
    for index in 0..MAX_USERS_PAGE {
        sqlx::query(
            "INSERT INTO users (username, role, state, password_phc, created_at, updated_at) \
             VALUES (?, 'viewer', 'enrolling', NULL, 0, 0)",
        )
        .bind(format!("user{index:04}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let capped = h.engine.admin().list_users(u32::MAX, "").await.unwrap();
    assert_eq!(capped.users.len(), MAX_USERS_PAGE as usize);
    assert!(!capped.next_page_token.is_empty(), "more after it");
    h.finish().await;
}

#[tokio::test]
async fn persisting_deletes_the_rows_of_ended_sessions_only() {
    let h = harness().await;
    let secret = h.root().await;
    let first = h.log_in("root", &secret).await;
    let count = |store: Store| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sessions")
            .fetch_one(store.raw_pool())
            .await
            .unwrap()
    };
    // 29 minutes idle: alive, kept.
    h.clock.advance(Duration::from_secs(29 * 60));
    h.engine.persist_sessions().await;
    assert_eq!(count(h.store.clone()).await, 1);
    let second = h.log_in("root", &secret).await;
    // Another 2 minutes: the first passed its 30-minute idle timeout, the second did not.
    h.clock.advance(Duration::from_secs(2 * 60));
    h.engine.persist_sessions().await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(ids, std::slice::from_ref(&second.session.id));
    assert_ne!(first.session.id, second.session.id);
    h.finish().await;
}

#[tokio::test]
async fn an_enrolment_token_opens_nothing_once_it_expired() {
    let h = harness().await;
    let root_secret = h.root().await;
    let root = h.log_in("root", &root_secret).await;
    let by = ActingUser {
        session: &root.session,
        peer: PEER,
    };
    let ttl = Duration::from_secs(AuthConfig::default().enrollment_token_ttl_secs);
    let (_, ada_token, _) = h
        .engine
        .admin()
        .create_user(by, "ada", Role::Admin)
        .await
        .unwrap();
    let (_, bob_token, _) = h
        .engine
        .admin()
        .create_user(by, "bob", Role::Viewer)
        .await
        .unwrap();

    // A second before the end, Ada sets her password and gets her TOTP.
    h.clock.advance(ttl - Duration::from_secs(1));
    let totp = h
        .engine
        .enrolment()
        .start_enrollment(Some(PEER), ada_token.expose(), PASSWORD)
        .await
        .unwrap();
    // At the end, a right code from it confirms nothing, and Bob's token
    // (never used) starts nothing.
    h.clock.advance(Duration::from_secs(1));
    let code = h.code(&secret_of(&totp.secret_base32));
    let confirmed = h
        .engine
        .enrolment()
        .confirm_enrollment(Some(PEER), ada_token.expose(), &code)
        .await;
    assert!(
        matches!(confirmed, Err(AuthError::BadToken("enrollment"))),
        "{confirmed:?}"
    );
    let started = h
        .engine
        .enrolment()
        .start_enrollment(Some(PEER), bob_token.expose(), PASSWORD)
        .await;
    assert!(
        matches!(started, Err(AuthError::BadToken("enrollment"))),
        "{started:?}"
    );
    // Neither account became active: neither can log in.
    for name in ["ada", "bob"] {
        let login = h
            .engine
            .logins()
            .login(PEER, name, PASSWORD, SecondFactor::Totp(&code))
            .await;
        assert!(login.is_err(), "{name}: {login:?}");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_password_is_judged_once_per_uid_and_four_times_in_all() {
    let h = harness().await;
    let token = h.bootstrap_token();
    let places = &h.engine.core().strength_checks;
    let bootstrap = |uid| {
        let peer = PeerCredentials { uid, ..PEER };
        h.engine
            .enrolment()
            .bootstrap(Some(peer), &token, "root", PASSWORD)
    };
    // PEER's one place is taken (an estimate of its still running).
    let running = places.take(PEER.uid).unwrap();
    let busy = bootstrap(PEER.uid).await;
    assert!(
        matches!(busy, Err(AuthError::PasswordCheckBusy)),
        "{busy:?}"
    );
    // Three more uids' estimates: four in all, so a fifth uid waits too.
    let others: Vec<_> = (2001..2004).map(|uid| places.take(uid).unwrap()).collect();
    let busy = bootstrap(1001).await;
    assert!(
        matches!(busy, Err(AuthError::PasswordCheckBusy)),
        "{busy:?}"
    );
    // Refused before anything was judged or used: once the places are
    // back, the same token opens the daemon.
    drop((running, others));
    let opened = bootstrap(1001).await;
    assert!(opened.is_ok(), "{opened:?}");
    h.finish().await;
}
