//! A compromised container holding 64 × 60 MiB of changed files (sparse:
//! gigabytes to read, little disk), and the daemon's memory while it
//! snapshots, verifies and exports it. The e2e test asserts on it, the
//! integrity benchmark reports it for the release build.
//!
//! Invariant: the peak is the kernel's VmHWM, reset just before each phase,
//! so it measures that phase alone.

use std::{path::Path, time::Duration};

use occc_client::{OcccClient, proto as pb};
use tokio_stream::StreamExt;

use crate::{
    DevDir, RunningDaemon,
    docker::{TestContainer, exec_detached},
    people::{bootstrap_super_admin, log_in_with_recovery_code},
    process_usage::{reset_peak, status_kib},
};

/// Files the container writes.
pub const FILES: usize = 64;
/// Size of each, in MiB.
pub const FILE_MIB: u64 = 60;

/// What one run saw.
#[derive(Debug)]
pub struct Measured {
    /// The snapshot as listed.
    pub snapshot: pb::SnapshotInfo,
    /// Its verification.
    pub verified: pb::SnapshotVerification,
    /// What a second verification by the same uid, sent at the same time,
    /// was answered.
    pub concurrent_refusal: tonic::Status,
    /// What a verification was answered whose session was logged out a
    /// quarter of the way through.
    pub logged_out_verification: Result<pb::SnapshotVerification, tonic::Status>,
    /// How long a whole verification took, and how long after the logout
    /// the logged-out one was answered.
    pub verifying_took: Duration,
    pub answered_after_logout: Duration,
    /// Bytes the export streamed.
    pub exported: u64,
    /// Resident KiB when the snapshot began.
    pub before_kib: u64,
    /// Peak resident KiB while it was written.
    pub writing_peak_kib: u64,
    /// Peak resident KiB while it was verified and exported.
    pub reading_peak_kib: u64,
}

impl Measured {
    /// Artifact bytes stored.
    #[must_use]
    pub fn stored(&self) -> u64 {
        self.snapshot.artifacts.iter().map(|a| a.size).sum()
    }
}

async fn first_snapshot(client: &OcccClient) -> pb::SnapshotInfo {
    for _ in 0..1200 {
        let list = client
            .integrity()
            .list_snapshots(pb::ListSnapshotsRequest {})
            .await
            .expect("list snapshots")
            .into_inner();
        if let Some(found) = list.snapshots.into_iter().next() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no snapshot completed within 120 s");
}

/// The container, quarantined by an exec, snapshotted with `bound` bytes;
/// the snapshot then verified and exported.
pub async fn run(socket: &Path, bound: u64) -> Measured {
    let mut flags = TestContainer::hardened_flags();
    flags.retain(|flag| *flag != "--read-only");
    let script = format!(
        "busybox mkdir -p /tmp/big && for i in $(busybox seq 1 {FILES}); do \
         busybox truncate -s {FILE_MIB}M /tmp/big/f$i; done; exec sleep 2147483647"
    );
    let gateway =
        TestContainer::create_with_command(socket, "bigsnap", &flags, &["sh", "-c", &script]);
    gateway.start();
    let big = gateway.upper_dir().join("tmp/big");
    for _ in 0..200 {
        if std::fs::read_dir(&big).map_or(0, Iterator::count) == FILES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read_dir(&big).map_or(0, Iterator::count), FILES);
    let dir = DevDir::new();
    dir.set_config(&format!(
        "[integrity]\ndocker_socket = {:?}\npoll_interval_ms = 500\nsnapshot_max_bytes = {bound}\n\
         [[integrity.containers]]\nname = {:?}\nprotected_paths = [\"/app\"]\n\
         critical_paths = [\"/app/gateway.sh\"]\nprocess_allowlist = [\"sleep\"]\n",
        socket.display().to_string(),
        gateway.name
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    // Let the first sweeps see the container.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut watch = session
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await
        .expect("watch")
        .into_inner();

    reset_peak(daemon.pid());
    let before_kib = status_kib(daemon.pid(), "VmRSS:");
    // Detached: the quarantine's pause can land before `true` exits.
    exec_detached(socket, &gateway.name, &["true"]);
    while let Some(event) = watch.next().await {
        if let Ok(pb::IntegrityEvent {
            kind: Some(pb::integrity_event::Kind::Status(status)),
        }) = event
            && status.quarantine.is_some()
        {
            break;
        }
    }
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    let snapshot = first_snapshot(&session).await;
    let writing_peak_kib = status_kib(daemon.pid(), "VmHWM:");

    reset_peak(daemon.pid());
    // Two at once from one uid: each reads the whole snapshot, so one runs
    // and the other is refused.
    let verify = || async {
        session
            .integrity()
            .verify_snapshot(pb::VerifySnapshotRequest {
                snapshot_id: snapshot.snapshot_id.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
    };
    let began = std::time::Instant::now();
    let (first, second) = tokio::join!(verify(), verify());
    let verifying_took = began.elapsed();
    let (verified, refused) = match (first, second) {
        (Ok(verified), Err(refused)) | (Err(refused), Ok(verified)) => (verified, refused),
        other => panic!("one verification runs, the other is refused: {other:?}"),
    };
    let mut export = session
        .integrity()
        .export_snapshot(pb::ExportSnapshotRequest {
            snapshot_id: snapshot.snapshot_id.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    let mut exported = 0u64;
    while let Some(chunk) = export.next().await {
        exported += chunk.expect("export chunk").data.len() as u64;
    }
    let reading_peak_kib = status_kib(daemon.pid(), "VmHWM:");
    let (logged_out_verification, answered_after_logout) = {
        let verifying = tokio::spawn({
            let session = session.clone();
            let snapshot_id = snapshot.snapshot_id.clone();
            async move {
                session
                    .integrity()
                    .verify_snapshot(pb::VerifySnapshotRequest { snapshot_id })
                    .await
                    .map(tonic::Response::into_inner)
            }
        });
        tokio::time::sleep(verifying_took / 4).await;
        session
            .auth()
            .logout(pb::LogoutRequest {})
            .await
            .expect("logout");
        let logged_out = std::time::Instant::now();
        let answer = verifying.await.expect("the verifying task");
        (answer, logged_out.elapsed())
    };
    daemon.terminate().await;
    Measured {
        snapshot,
        verified,
        concurrent_refusal: refused,
        logged_out_verification,
        verifying_took,
        answered_after_logout,
        exported,
        before_kib,
        writing_peak_kib,
        reading_peak_kib,
    }
}
