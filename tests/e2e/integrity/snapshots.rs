//! Forensic snapshots of a container holding 64 × 60 MiB of changed files:
//! the evidence streams into the store as it is read, so the daemon's
//! memory barely grows while it writes 512 MiB, verifies and exports it;
//! the byte bound holds; the snapshot verifies. (The absolute peak of the
//! release build is the integrity benchmark's.)

use occc_tests::{
    big_snapshot::{self, FILE_MIB, FILES},
    docker::{say_skipped, shared_socket},
};

const BOUND: u64 = 512 << 20;
/// Growth allowed over the resident size before the snapshot: holding the
/// evidence would grow by the whole 512 MiB.
const GROWTH_LIMIT_KIB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_gigabytes_of_changes_streams_within_a_small_memory_bound() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "a_snapshot_of_gigabytes_of_changes_streams_within_a_small_memory_bound",
        );
    };
    let measured = big_snapshot::run(&socket, BOUND).await;
    let stored = measured.stored();
    println!(
        "snapshot of {FILES} × {FILE_MIB} MiB: {} MiB stored; RSS {} MiB before, peak {} MiB writing, {} MiB verifying and exporting",
        stored >> 20,
        measured.before_kib / 1024,
        measured.writing_peak_kib / 1024,
        measured.reading_peak_kib / 1024
    );
    assert!(stored <= BOUND, "the bound holds: {stored}");
    assert!(
        stored >= BOUND - (1 << 20),
        "the bound was filled: {stored}"
    );
    let cut: Vec<&str> = measured
        .snapshot
        .artifacts
        .iter()
        .filter(|a| a.partial)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(cut.len(), 1, "one artifact cut at the bound: {cut:?}");
    assert!(cut[0].starts_with("files/"), "{cut:?}");
    assert!(
        !measured.snapshot.truncated.is_empty(),
        "what came after is named"
    );
    assert!(measured.verified.ok, "{:?}", measured.verified);
    let refused = &measured.concurrent_refusal;
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("snapshot verifications"),
        "{refused:?}"
    );
    // Logged out while verifying: dropped, never answered.
    let ended = measured
        .logged_out_verification
        .as_ref()
        .expect_err("a verification whose caller was logged out is not answered");
    assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
    assert!(
        measured.answered_after_logout < measured.verifying_took / 2,
        "dropped at the logout, not refused at its end: answered {:?} after it (a whole one took {:?})",
        measured.answered_after_logout,
        measured.verifying_took
    );
    assert!(measured.exported > stored, "{} exported", measured.exported);
    for (phase, peak) in [
        ("writing", measured.writing_peak_kib),
        ("verifying and exporting", measured.reading_peak_kib),
    ] {
        assert!(
            peak < measured.before_kib + GROWTH_LIMIT_KIB,
            "peak RSS while {phase}: {peak} KiB from {} KiB",
            measured.before_kib
        );
    }
}
