//! The engine on a real SQLCipher store with an injected clock: expiries of
//! bootstrap and enrolment tokens, the session idle timeout and the
//! elevation window, and the wall clock set back an hour and forward a day
//! (issue #16) — all by moving the clock, never by sleeping.

use std::{path::Path, sync::Arc, time::Duration};

use occc_tests::people::{GOOD_PASSWORD, oathtool_code};
use occcd::{
    audit::{AuditLog, AuditWriter, ChainHasher},
    auth::{
        ActingUser, AuthEngine, AuthError, ElevationProof, LoginOutcome, SecondFactor,
        role::Role,
        sessions::{Session, SessionRejected},
        totp::step_of,
    },
    clock::{Clock, ManualClock, UnixMillis},
    config::AuthConfig,
    crypto::{KeyPurpose, KeyRing},
    store::Store,
    transport::PeerCredentials,
};
use zeroize::Zeroizing;

const MINUTE: Duration = Duration::from_secs(60);
const PEER: PeerCredentials = PeerCredentials {
    uid: 1000,
    gid: 1000,
    pid: Some(4242),
};

/// The engine and what must be shut down after it, as the daemon does.
struct Running {
    auth: AuthEngine,
    writer: AuditWriter,
    store: Store,
}

impl Running {
    async fn shut_down(self) {
        drop(self.auth);
        self.writer.finish().await;
        self.store.close().await;
    }
}

async fn engine(dir: &Path, clock: Arc<ManualClock>) -> Running {
    let master = KeyRing::from_bytes(Zeroizing::new([7; 32]));
    let store = Store::open(
        &dir.join("occcd.db"),
        &master.derive(KeyPurpose::Database),
        true,
    )
    .await
    .unwrap();
    let hasher = Arc::new(ChainHasher::new(&master.derive(KeyPurpose::AuditChain)));
    let (audit, writer) = AuditLog::start(
        store.clone(),
        hasher,
        clock.clone(),
        Duration::from_secs(2),
        64,
        Arc::default(),
    )
    .await
    .unwrap();
    let config = AuthConfig {
        argon2_iterations: 1,
        argon2_memory_kib: 1024,
        argon2_parallelism: 1,
        ..AuthConfig::default()
    };
    let auth = AuthEngine::start(
        store.clone(),
        &master,
        audit,
        clock,
        &config,
        dir.to_owned(),
    )
    .await
    .unwrap();
    Running {
        auth,
        writer,
        store,
    }
}

fn bootstrap_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("bootstrap.token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The code for the clock's current step plus `offset`.
/// Root's login with the password and the TOTP code `totp`.
async fn root_login(auth: &AuthEngine, totp: &str) -> LoginOutcome {
    auth.logins()
        .login(PEER, "root", GOOD_PASSWORD, SecondFactor::Totp(totp))
        .await
        .unwrap()
}

/// Elevates `session` with the TOTP code `totp` alone.
async fn elevate_with_totp(auth: &AuthEngine, session: &Session, totp: &str) -> Session {
    auth.logins()
        .elevate(
            session,
            PEER,
            ElevationProof {
                password: None,
                factor: SecondFactor::Totp(totp),
            },
        )
        .await
        .unwrap()
}

fn code(secret: &str, clock: &ManualClock, offset: i64) -> String {
    oathtool_code(secret, step_of(clock.now()) + offset)
}

#[tokio::test]
async fn the_bootstrap_token_expires_after_its_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    let running = engine(dir.path(), clock.clone()).await;
    clock.advance(60 * MINUTE + Duration::from_secs(1));
    let err = running
        .auth
        .enrolment()
        .bootstrap(
            Some(PEER),
            &bootstrap_token(dir.path()),
            "root",
            GOOD_PASSWORD,
        )
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::BadToken("bootstrap"));
    running.shut_down().await;
}

/// Bootstraps "root" and confirms its TOTP (one step back); its secret.
async fn enrolled_root(auth: &AuthEngine, dir: &Path, clock: &ManualClock) -> String {
    let started = auth
        .enrolment()
        .bootstrap(Some(PEER), &bootstrap_token(dir), "root", GOOD_PASSWORD)
        .await
        .unwrap();
    let secret = started.totp.secret_base32.to_string();
    auth.enrolment()
        .confirm_enrollment(
            Some(PEER),
            started.enrollment_token.expose(),
            &code(&secret, clock, -1),
        )
        .await
        .unwrap();
    secret
}

#[tokio::test]
async fn idle_timeout_elevation_window_and_enrolment_expiry_follow_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    let running = engine(dir.path(), clock.clone()).await;
    let auth = &running.auth;
    let secret = enrolled_root(auth, dir.path(), &clock).await;
    let login = root_login(auth, &code(&secret, &clock, 0)).await;
    let token = login.token.expose().to_owned();

    // Elevation lasts 5 minutes.
    let session = elevate_with_totp(auth, &login.session, &code(&secret, &clock, 1)).await;
    clock.advance(4 * MINUTE);
    assert!(
        auth.authenticate(&token, PEER.uid)
            .unwrap()
            .is_elevated(clock.now())
    );
    clock.advance(MINUTE);
    assert!(
        !auth
            .authenticate(&token, PEER.uid)
            .unwrap()
            .is_elevated(clock.now())
    );

    // An enrolment token lives 24 hours.
    let by = ActingUser {
        session: &session,
        peer: PEER,
    };
    let (_, invitation, _) = auth
        .admin()
        .create_user(by, "alice", Role::Viewer)
        .await
        .unwrap();
    clock.advance(24 * 60 * MINUTE + Duration::from_secs(1));
    let err = auth
        .enrolment()
        .start_enrollment(Some(PEER), invitation.expose(), GOOD_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::BadToken("enrollment"));

    // 24 hours later the admin's session is past its 12-hour lifetime.
    assert_eq!(
        auth.authenticate(&token, PEER.uid).unwrap_err(),
        AuthError::Session(SessionRejected::LifetimeExpired)
    );
    // A fresh session idles out at 30 minutes.
    let login = root_login(auth, &code(&secret, &clock, 0)).await;
    let token = login.token.expose().to_owned();
    clock.advance(29 * MINUTE);
    auth.authenticate(&token, PEER.uid)
        .expect("used within 30 minutes");
    clock.advance(30 * MINUTE);
    assert_eq!(
        auth.authenticate(&token, PEER.uid).unwrap_err(),
        AuthError::Session(SessionRejected::IdleExpired)
    );
    running.shut_down().await;
}

#[tokio::test]
async fn the_wall_clock_jumping_back_an_hour_and_forward_a_day_keeps_every_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    let running = engine(dir.path(), clock.clone()).await;
    let auth = &running.auth;
    let secret = enrolled_root(auth, dir.path(), &clock).await;
    let used_code = code(&secret, &clock, 0);
    let login = root_login(auth, &used_code).await;
    let token = login.token.expose().to_owned();
    elevate_with_totp(auth, &login.session, &code(&secret, &clock, 1)).await;

    // Back an hour. No TOTP code opens a login: neither the one used (now
    // two steps' worth of hours ahead) nor one for the new "now" (a step
    // before the last one accepted: a replay).
    clock.rewind(60 * MINUTE);
    for factor in [used_code.clone(), code(&secret, &clock, 0)] {
        let refused = auth
            .logins()
            .login(PEER, "root", GOOD_PASSWORD, SecondFactor::Totp(&factor))
            .await
            .unwrap_err();
        assert_eq!(refused, AuthError::BadCredentials);
    }
    // The elevation lasts its 5 minutes in elapsed time, not an hour more.
    assert!(
        auth.authenticate(&token, PEER.uid)
            .unwrap()
            .is_elevated(clock.now())
    );
    clock.advance(5 * MINUTE);
    assert!(
        !auth
            .authenticate(&token, PEER.uid)
            .unwrap()
            .is_elevated(clock.now())
    );
    // Used every 20 minutes, the session ends 12 hours after its login in
    // elapsed time (725 minutes in, not 13 hours).
    let mut elapsed = 5;
    loop {
        clock.advance(20 * MINUTE);
        elapsed += 20;
        match auth.authenticate(&token, PEER.uid) {
            Ok(_) => assert!(elapsed < 12 * 60, "alive {elapsed} minutes after its login"),
            Err(err) => {
                assert_eq!(err, AuthError::Session(SessionRejected::LifetimeExpired));
                assert!(elapsed >= 12 * 60, "ended after {elapsed} minutes");
                break;
            }
        }
    }

    // Wrong passwords until the account is locked; forward a day: the lock
    // has expired and the right password and a fresh code log in.
    let mut locked = false;
    for _ in 0..40 {
        match auth
            .logins()
            .login(
                PEER,
                "root",
                "not-the-password",
                SecondFactor::Totp("000000"),
            )
            .await
        {
            Err(AuthError::Locked { .. }) => {
                locked = true;
                break;
            }
            _ => clock.advance(Duration::from_secs(11)),
        }
    }
    assert!(locked, "never locked");
    clock.advance(24 * 60 * MINUTE);
    let again = root_login(auth, &code(&secret, &clock, 0)).await;
    assert!(auth.authenticate(again.token.expose(), PEER.uid).is_ok());
    running.shut_down().await;
}

/// A fresh store and engine on a manual clock, root enrolled and logged in.
async fn root_logged_in() -> (tempfile::TempDir, Arc<ManualClock>, Running, LoginOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(UnixMillis(1_800_000_000_000)));
    let running = engine(dir.path(), clock.clone()).await;
    let secret = enrolled_root(&running.auth, dir.path(), &clock).await;
    let login = root_login(&running.auth, &code(&secret, &clock, 0)).await;
    (dir, clock, running, login)
}

#[tokio::test]
async fn a_restart_after_the_wall_clock_went_back_keeps_the_sessions_limits_in_elapsed_time() {
    let (dir, clock, running, login) = root_logged_in().await;
    let token = login.token.expose().to_owned();
    clock.advance(10 * MINUTE);
    running.auth.authenticate(&token, PEER.uid).unwrap();
    // Back an hour; the session is used, written, and the daemon restarts.
    clock.rewind(60 * MINUTE);
    running.auth.authenticate(&token, PEER.uid).unwrap();
    running.auth.persist_sessions().await;
    running.shut_down().await;
    let running = engine(dir.path(), clock.clone()).await;
    // Its idle timeout counts from its last use in elapsed time: not
    // restarted by the restart, not stretched by the hour.
    clock.advance(30 * MINUTE);
    assert_eq!(
        running.auth.authenticate(&token, PEER.uid).unwrap_err(),
        AuthError::Session(SessionRejected::IdleExpired)
    );
    running.shut_down().await;
}

#[tokio::test]
async fn a_clock_set_back_while_the_daemon_was_down_keeps_the_sessions_limits_in_elapsed_time() {
    let (dir, clock, running, login) = root_logged_in().await;
    let token = login.token.expose().to_owned();
    running.auth.authenticate(&token, PEER.uid).unwrap();
    // Stopped a minute after its last use (the sessions and the clock
    // anchor written), down ten minutes, the clock set back 40 meanwhile;
    // started again on the same boot.
    clock.advance(MINUTE);
    running.auth.persist_sessions().await;
    running.shut_down().await;
    clock.advance(10 * MINUTE);
    clock.rewind(40 * MINUTE);
    let running = engine(dir.path(), clock.clone()).await;
    // Idle 11 minutes in elapsed time: it ends 19 minutes on, not 30
    // (nor 30 from where the clock's 29 minutes below its last use put it).
    clock.advance(19 * MINUTE - Duration::from_secs(2));
    let sessions = running.auth.sessions();
    // A passive check (not a use, which would restart its idle time).
    assert!(
        sessions
            .check(&login.session.id, PEER.uid, clock.now())
            .is_ok()
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        running.auth.authenticate(&token, PEER.uid).unwrap_err(),
        AuthError::Session(SessionRejected::IdleExpired)
    );
    running.shut_down().await;
}
