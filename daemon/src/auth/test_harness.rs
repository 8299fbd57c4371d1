//! The auth engine's test harness: the real engine on a real SQLCipher
//! store and audit log, time injected with `ManualClock` (no sleeping;
//! expiries are reached by advancing it). Shared by the flow and restart
//! tests.

use std::{sync::Arc, time::Duration};

use zeroize::Zeroizing;

use super::{engine::AuthEngine, login::SecondFactor, totp::TotpSecret};
use crate::{
    audit::{AuditLog, AuditWriter, ChainHasher},
    clock::{Clock, ManualClock, UnixMillis},
    config::AuthConfig,
    crypto::{KeyPurpose, KeyRing},
    store::Store,
    transport::PeerCredentials,
};

pub(super) const PEER: PeerCredentials = PeerCredentials {
    uid: 1000,
    gid: 1000,
    pid: None,
};
pub(super) const PASSWORD: &str = "Correct-horse-battery-42";

pub(super) struct Harness {
    pub(super) dir: tempfile::TempDir,
    pub(super) clock: Arc<ManualClock>,
    pub(super) engine: AuthEngine,
    pub(super) writer: AuditWriter,
    pub(super) store: Store,
    /// The master key and audit handle the engine was started with (a
    /// second engine over the same store is a restart).
    pub(super) master: KeyRing,
    pub(super) audit: AuditLog,
}

pub(super) async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let master = KeyRing::from_bytes(Zeroizing::new([9; 32]));
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
        hasher,
        clock.clone(),
        Duration::from_secs(5),
        1024,
        Arc::default(),
    )
    .await
    .unwrap();
    let config = config();
    let engine = AuthEngine::start(
        store.clone(),
        &master,
        audit.clone(),
        clock.clone(),
        &config,
        dir.path().to_path_buf(),
    )
    .await
    .unwrap();
    Harness {
        dir,
        clock,
        engine,
        writer,
        store,
        master,
        audit,
    }
}

/// The engine's test configuration: a cheap Argon2 cost.
pub(super) fn config() -> AuthConfig {
    AuthConfig {
        argon2_iterations: 1,
        argon2_memory_kib: 8192,
        argon2_parallelism: 1,
        ..AuthConfig::default()
    }
}

impl Harness {
    /// Stops the audit writer and closes the store, as the daemon does.
    pub(super) async fn finish(self) {
        drop(self.engine);
        self.writer.finish().await;
        self.store.close().await;
    }

    pub(super) fn bootstrap_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bootstrap.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The code of `secret` now (as an authenticator app would show it).
    pub(super) fn code(&self, secret: &TotpSecret) -> String {
        secret.code_at(self.clock.now()).to_string()
    }

    /// Bootstraps "root" and confirms its TOTP; returns its secret.
    pub(super) async fn root(&self) -> TotpSecret {
        let started = self
            .engine
            .enrolment()
            .bootstrap(Some(PEER), &self.bootstrap_token(), "root", PASSWORD)
            .await
            .unwrap();
        let secret = secret_of(&started.totp.secret_base32);
        let code = self.code(&secret);
        let codes = self
            .engine
            .enrolment()
            .confirm_enrollment(Some(PEER), started.enrollment_token.expose(), &code)
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);
        secret
    }

    /// Logs `username` in with a fresh TOTP step.
    pub(super) async fn log_in(&self, username: &str, secret: &TotpSecret) -> super::LoginOutcome {
        self.clock.advance(Duration::from_secs(30));
        let code = self.code(secret);
        self.engine
            .logins()
            .login(PEER, username, PASSWORD, SecondFactor::Totp(&code))
            .await
            .unwrap()
    }
}

pub(super) fn secret_of(base32: &str) -> TotpSecret {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(base32.trim_end_matches('=').as_bytes())
        .unwrap();
    TotpSecret::from_bytes(Zeroizing::new(bytes))
}
