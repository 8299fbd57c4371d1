//! Audit entries written straight into a store, continuing its chain with
//! the daemon's own hasher: a long log without a long run (the scale bench,
//! and tests of reads that walk the whole log).
//!
//! Invariant: the appended entries verify — each links to the one before
//! and carries the hash the daemon would have given it.

use occc_client::OcccClient;
use occcd::{
    audit::ChainHasher,
    clock::{Clock, SystemClock},
    store::{AuditRow, Store},
};

use crate::{
    DevDir, RunningDaemon,
    people::{Person, bootstrap_super_admin, log_in_with_recovery_code},
};

/// Entries appended per store call.
const BATCH: usize = 5_000;

/// How the generated entries look.
#[derive(Debug, Clone, Copy)]
pub struct GeneratedAudit {
    /// Entries to append.
    pub count: u64,
    /// Distinct users named by successful logins (`user00000`, …).
    pub users: u64,
    /// One entry in this many is a rare kind (`user_deleted`).
    pub rare_every: u64,
}

/// Appends `shape.count` entries after the store's newest one, spread over
/// the last 30 days: a quarter refused calls, a quarter failed logins, half
/// successful ones, and the rare kind. The store must hold one entry.
pub async fn append_generated_audit(store: &Store, hasher: &ChainHasher, shape: GeneratedAudit) {
    let head = store
        .last_audit_row()
        .await
        .expect("head")
        .expect("entries");
    let (mut sequence, mut prev_hash) = (head.sequence, head.entry_hash);
    let start = SystemClock.now().0 - 30 * 86_400_000;
    let step = (30 * 86_400_000) / i64::try_from(shape.count.max(1)).expect("fits");
    let mut batch = Vec::with_capacity(BATCH);
    for index in 0..shape.count {
        sequence += 1;
        let (kind, user) = match index % 4 {
            _ if index % shape.rare_every.max(1) == 0 => ("user_deleted", Some("root".to_owned())),
            0 => ("call_refused", None),
            1 => ("login_failed", None),
            _ => (
                "login_succeeded",
                Some(format!("user{:05}", index % shape.users.max(1))),
            ),
        };
        let mut row = AuditRow {
            sequence,
            at_unix_ms: start + i64::try_from(index).expect("fits") * step,
            kind: kind.to_owned(),
            actor_uid: Some(1000),
            actor_gid: Some(1000),
            actor_pid: Some(4242),
            actor_user: user,
            detail: r#"{"method":"password","rpc":"/occc.v1.Auth/Login"}"#.to_owned(),
            prev_hash: prev_hash.clone(),
            entry_hash: Vec::new(),
        };
        row.entry_hash = hasher.entry_hash(&row);
        prev_hash = row.entry_hash.clone();
        batch.push(row);
        if batch.len() == BATCH {
            store.append_audit_rows(&batch).await.expect("append");
            batch.clear();
        }
    }
    store.append_audit_rows(&batch).await.expect("append");
}

/// A super-admin signed in to a daemon whose log holds generated entries
/// (see [`super_admin_over_generated_audit`]).
pub struct OverGeneratedAudit {
    /// The daemon, started again after the entries were appended.
    pub daemon: RunningDaemon,
    /// A client without a session.
    pub anonymous: OcccClient,
    /// The super-admin, with their TOTP and remaining recovery codes.
    pub person: Person,
    /// Their session (not elevated).
    pub session: OcccClient,
}

/// Starts a daemon in `dir` (its config as set) to bootstrap super-admin
/// `username`, stops it to append `shape`'s entries to its log, starts it
/// again and signs the super-admin in with a recovery code.
pub async fn super_admin_over_generated_audit(
    dir: &DevDir,
    username: &str,
    shape: GeneratedAudit,
) -> OverGeneratedAudit {
    let daemon = RunningDaemon::start(dir).await;
    let anonymous = daemon.client().await;
    let mut person = bootstrap_super_admin(dir, &anonymous, username).await;
    drop(anonymous);
    daemon.terminate().await;
    let (store, hasher) = dir.open_store().await;
    append_generated_audit(&store, &hasher, shape).await;
    store.close().await;
    let daemon = RunningDaemon::start(dir).await;
    let anonymous = daemon.client().await;
    let session = log_in_with_recovery_code(&anonymous, &mut person).await;
    OverGeneratedAudit {
        daemon,
        anonymous,
        person,
        session,
    }
}
