//! The editor's re-check when a write has its turn: a write waiting on its
//! container's lock while its session ends, its role drops or a quarantine
//! begins is refused once it gets the lock, and the file keeps its bytes —
//! on a real SQLCipher store and a real file, the write held at the lock
//! deterministically (the test holds the lock and sees the write take its
//! handle on it).

use std::{sync::Mutex, time::Duration};

use zeroize::Zeroizing;

use super::*;
use crate::{
    audit::ChainHasher,
    auth::{
        elevation::{Elevation, ElevationMethod},
        sessions::Session,
    },
    clock::{ManualClock, UnixMillis},
    crypto::{KeyPurpose, KeyRing},
    openclaw::view::SessionNow,
    transport::PeerCredentials,
};

const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
/// The file's `{}` written another way: an edit that changes the bytes.
const REFORMATTED: &str = "{\n}\n";

/// A session the test changes while a write waits.
struct Live(Mutex<Option<Session>>);

impl SessionNow for Live {
    fn session_now(&self) -> Option<Session> {
        self.0.lock().unwrap().clone()
    }
}

fn admin_session() -> Session {
    Session {
        id: "s1".to_owned(),
        user_id: 1,
        username: "ada".to_owned(),
        role: Role::Admin,
        peer_uid: 1000,
        created_at: NOW,
        last_seen: NOW,
        elevation: Some(Elevation {
            until: NOW.plus(Duration::from_secs(300)),
            method: ElevationMethod::Totp,
        }),
        generation: 1,
        account_created: 0,
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    editor: ConfigEditor,
    versioner: Arc<Versioner>,
    quarantine: QuarantineLock,
    writer: crate::audit::AuditWriter,
    store: Store,
}

async fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyRing::from_bytes(Zeroizing::new([5; 32]));
    let store = Store::open(
        &dir.path().join("occcd.db"),
        &keys.derive(KeyPurpose::Database),
        true,
    )
    .await
    .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_at(NOW));
    let hasher = Arc::new(ChainHasher::new(&keys.derive(KeyPurpose::AuditChain)));
    let (audit, writer) = AuditLog::start(
        store.clone(),
        hasher,
        Arc::clone(&clock),
        Duration::from_secs(5),
        64,
        Arc::default(),
    )
    .await
    .unwrap();
    let file = dir.path().join("openclaw.json");
    std::fs::write(&file, "{}").unwrap();
    let versioner = Arc::new(Versioner::new(&keys.derive(KeyPurpose::ConfigVersions)));
    let quarantine = QuarantineLock::default();
    let editor = ConfigEditor::new(EditorParts {
        store: store.clone(),
        audit,
        clock,
        sealer: Arc::new(Sealer::new(&keys.derive(KeyPurpose::Sealing)).unwrap()),
        versioner: Arc::clone(&versioner),
        targets: vec![ConfigTarget {
            container: "gw".to_owned(),
            path: file.clone(),
        }],
        versions_kept: 10,
        quarantine: quarantine.clone(),
    });
    Bench {
        _dir: dir,
        file,
        editor,
        versioner,
        quarantine,
        writer,
        store,
    }
}

/// Runs an edit of the file while the test holds its lock; once the edit
/// waits there, `meanwhile` runs, then the lock is let go. The edit's
/// outcome.
async fn edit_while_waiting(
    bench: &Bench,
    session: &Live,
    text: &str,
    meanwhile: impl FnOnce(),
) -> Result<Accepted, ConfigError> {
    let by = ConfigActor {
        username: "ada",
        role: Role::Admin,
        peer: PeerCredentials {
            uid: 1000,
            gid: 1000,
            pid: None,
        },
        session,
    };
    let target = bench.editor.targets().target("gw").unwrap();
    let lock = bench.editor.targets().lock_of(target);
    let held = lock.lock().await;
    let expected = bench.versioner.of_disk(Some(b"{}".as_slice()));
    let edit = bench
        .editor
        .update(by, "gw", &expected, text.to_owned(), "reformat");
    let mut edit = std::pin::pin!(edit);
    // The map's handle and ours: a third is the edit's, taken right before
    // it waits for the lock (its text is checked on the blocking pool
    // first, in real time).
    let started = std::time::Instant::now();
    while Arc::strong_count(&lock) < 3 {
        let polled =
            std::future::poll_fn(|context| std::task::Poll::Ready(edit.as_mut().poll(context)))
                .await;
        assert!(polled.is_pending(), "the edit ended without its turn");
        assert!(started.elapsed() < Duration::from_secs(30), "never waited");
        tokio::task::yield_now().await;
    }
    meanwhile();
    drop(held);
    edit.await
}

/// Whether `outcome` is a refusal saying `why`.
fn refused_because(outcome: &Result<Accepted, ConfigError>, why: &str) -> bool {
    matches!(outcome, Err(ConfigError::NoLongerAllowed(said)) if said.contains(why))
}

#[tokio::test]
async fn a_write_that_waited_for_its_turn_is_asked_again_and_refused() {
    let bench = bench().await;
    let live = Live(Mutex::new(Some(admin_session())));
    let end = || *live.0.lock().unwrap() = None;
    // Nothing changes while it waits: written.
    let written = edit_while_waiting(&bench, &live, REFORMATTED, || {}).await;
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(std::fs::read(&bench.file).unwrap(), b"{\n}\n");
    std::fs::write(&bench.file, "{}").unwrap();

    let ended = edit_while_waiting(&bench, &live, REFORMATTED, || {
        *live.0.lock().unwrap() = None
    })
    .await;
    assert!(refused_because(&ended, "session ended"), "{ended:?}");
    let demoted = || {
        let mut session = admin_session();
        session.role = Role::Operator;
        *live.0.lock().unwrap() = Some(session);
    };
    let refused = edit_while_waiting(&bench, &live, REFORMATTED, demoted).await;
    assert!(refused_because(&refused, "role changed"), "{refused:?}");
    let lapsed = || {
        let mut session = admin_session();
        session.elevation = None;
        *live.0.lock().unwrap() = Some(session);
    };
    let refused = edit_while_waiting(&bench, &live, REFORMATTED, lapsed).await;
    assert!(
        refused_because(&refused, "re-authentication lapsed"),
        "{refused:?}"
    );
    *live.0.lock().unwrap() = Some(admin_session());
    let quarantined =
        edit_while_waiting(&bench, &live, REFORMATTED, || bench.quarantine.set(true)).await;
    assert!(
        matches!(quarantined, Err(ConfigError::Quarantined)),
        "{quarantined:?}"
    );
    assert_eq!(std::fs::read(&bench.file).unwrap(), b"{}", "never written");
    // Accepting the text on disk (an outside edit: not the version last
    // accepted) writes no file, so the check at the lock is its only one.
    bench.quarantine.set(false);
    let accepted = edit_while_waiting(&bench, &live, "{}", end).await;
    assert!(refused_because(&accepted, "session ended"), "{accepted:?}");
    *live.0.lock().unwrap() = Some(admin_session());
    let accepted = edit_while_waiting(&bench, &live, "{}", || {}).await;
    assert!(
        accepted
            .as_ref()
            .is_ok_and(|accepted| accepted.stored.is_some()),
        "{accepted:?}"
    );
    drop(bench.editor);
    bench.writer.finish().await;
    bench.store.close().await;
}
