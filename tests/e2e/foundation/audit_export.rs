//! The audit log checked from outside: a signed export that `occcctl audit
//! verify-export` accepts with the public key alone and refuses once edited,
//! reordered, cut short or checked with another key; the daemon's own
//! verify catching newest entries removed behind a checkpoint; and a watch
//! that sees each new entry once, in order, and ends with its session.

use std::time::Duration;

use occc_client::{OcccClient, proto as pb};
use occc_tests::{DevDir, RunningDaemon, people::signed_in_super_admin, workspace_binary};
use tokio_stream::StreamExt;
use tonic::Code;

async fn export(client: &OcccClient, first_sequence: u64) -> Vec<String> {
    let mut stream = client
        .audit()
        .export_audit(pb::ExportAuditRequest { first_sequence })
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(batch) = stream.next().await {
        lines.extend(batch.unwrap().lines);
    }
    lines
}

/// `occcctl audit verify-export` on `lines` (offline: no daemon flag needed).
fn verify_export(dir: &DevDir, name: &str, lines: &[String], key: &str) -> (bool, String) {
    let file = dir.path().join(name);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = std::process::Command::new(workspace_binary("occcctl"))
        .args([
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--pubkey",
            key,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    // A file that does not verify is "a check failed": exit code 1.
    assert!(
        output.status.success() || output.status.code() == Some(1),
        "{text}"
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn exports_verify_offline_and_every_tampering_is_named() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let key = root
        .session
        .audit()
        .get_audit_public_key(pb::GetAuditPublicKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (key.algorithm.as_str(), key.public_key.len()),
        ("ed25519", 32)
    );
    let (ok, offline_key) = dir.run_occcd(&["audit", "pubkey"]).await;
    assert!(ok.success(), "{offline_key}");
    assert_eq!(
        offline_key.trim(),
        key.public_key_hex,
        "the daemon and `occcd audit pubkey` agree"
    );

    let lines = export(&root.session, 0).await;
    assert!(lines[0].contains("\"type\":\"header\"") && lines[1].contains("\"type\":\"anchor\""));
    assert!(lines.last().unwrap().contains("\"type\":\"checkpoint\""));
    let (ok, out) = verify_export(&dir, "all.jsonl", &lines, &key.public_key_hex);
    assert!(ok && out.contains("verified"), "{out}");

    let entry_lines: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"type\":\"entry\""))
        .collect();
    let mut edited = lines.clone();
    let target = entry_lines[1];
    edited[target] = edited[target].replace("\"kind\":\"", "\"kind\":\"x");
    let (ok, out) = verify_export(&dir, "edited.jsonl", &edited, &key.public_key_hex);
    assert!(!ok && out.contains("changed, added or removed"), "{out}");

    let mut reordered = lines.clone();
    reordered.swap(entry_lines[0], entry_lines[1]);
    let (ok, out) = verify_export(&dir, "reordered.jsonl", &reordered, &key.public_key_hex);
    assert!(!ok && out.contains("out of order"), "{out}");

    let cut = &lines[..lines.len() - 2];
    let (ok, out) = verify_export(&dir, "cut.jsonl", cut, &key.public_key_hex);
    assert!(!ok && out.contains("truncated"), "{out}");

    let other_key = "11".repeat(32);
    let (ok, out) = verify_export(&dir, "other.jsonl", &lines, &other_key);
    assert!(!ok && out.contains("different public key"), "{out}");

    // A later export from an entry starts at a checkpoint and verifies too.
    let newest = root
        .session
        .verify_audit_chain()
        .await
        .unwrap()
        .entries_checked;
    let tail = export(&root.session, newest).await;
    assert!(tail.len() < lines.len() + 4, "{} lines", tail.len());
    let (ok, out) = verify_export(&dir, "tail.jsonl", &tail, &key.public_key_hex);
    assert!(ok, "{out}");

    // A viewer may read the key but not export.
    let status = root
        .anonymous
        .audit()
        .export_audit(pb::ExportAuditRequest::default())
        .await;
    assert_eq!(status.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn removing_the_newest_entries_behind_a_checkpoint_is_caught_by_verify() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    // An export signs a checkpoint of the head.
    let lines = export(&root.session, 0).await;
    let last = lines
        .iter()
        .rev()
        .find(|line| line.contains("\"type\":\"entry\""))
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .and_then(|value| value["sequence"].as_i64())
        .unwrap();
    daemon.terminate().await;
    let (store, _) = dir.open_store().await;
    sqlx::query("DROP TRIGGER audit_log_no_delete")
        .execute(store.raw_pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE sequence >= ?")
        .bind(last - 1)
        .execute(store.raw_pool())
        .await
        .unwrap();
    store.close().await;
    let (status, out) = dir.run_occcd(&["audit", "verify"]).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("the newest entries were removed"), "{out}");
}

#[tokio::test]
async fn a_watch_sees_each_new_entry_once_in_order_and_ends_with_its_session() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let mut watch = root
        .session
        .audit()
        .watch_audit(pb::WatchAuditRequest {
            after_sequence: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Entries already there after entry 1 come first, then new ones.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(watch.next().await.unwrap().unwrap().sequence);
    }
    assert_eq!(seen, [2, 3, 4]);
    // Failed logins are new entries; a kind filter on a second watch sees only them.
    let mut failures = root
        .session
        .audit()
        .watch_audit(pb::WatchAuditRequest {
            kind: "login_failed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        let _ = root
            .anonymous
            .auth()
            .login(pb::LoginRequest {
                username: "nobody-here".into(),
                password: "wrong-password-entirely".into(),
                second_factor: Some(pb::login_request::SecondFactor::TotpCode("000000".into())),
            })
            .await;
    }
    let first = failures.next().await.unwrap().unwrap();
    assert_eq!(first.kind, "login_failed");
    let mut last = *seen.last().unwrap();
    while last < first.sequence {
        let entry = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the unfiltered watch keeps up")
            .unwrap()
            .unwrap();
        assert_eq!(entry.sequence, last + 1, "no gap, no repeat");
        last = entry.sequence;
    }
    root.session
        .auth()
        .logout(pb::LogoutRequest {})
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => {}
                Some(Err(status)) => return Some(status.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the watch ends after logout");
    assert_eq!(ended, Some(Code::Unauthenticated));
}

#[tokio::test]
async fn occcctl_prints_the_key_tails_exports_and_verifies() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let token = root.session.session().unwrap().expose().to_owned();
    let run = |args: Vec<String>| {
        let mut command = crate::auth::occcctl::occcctl(&dir, &[]);
        command
            .args(args)
            .env("OCCC_SESSION_TOKEN", &token)
            .stdin(std::process::Stdio::null());
        async move {
            let output = command.output().await.unwrap();
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            (
                output.status.success(),
                text + &String::from_utf8_lossy(&output.stderr),
            )
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (ok, key) = run(args(&["audit", "pubkey"])).await;
    assert!(ok && key.trim().len() == 64, "{key}");

    let (ok, out) = run(args(&["--json", "audit", "tail", "-n", "3"])).await;
    assert!(ok, "{out}");
    let sequences: Vec<u64> = out
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(sequences.len(), 3, "{out}");
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "oldest first: {sequences:?}"
    );

    let file = dir.path().join("audit.jsonl");
    let (ok, out) = run(args(&["audit", "export", file.to_str().unwrap()])).await;
    assert!(ok, "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (ok, out) = run(args(&["audit", "export", file.to_str().unwrap()])).await;
    assert!(
        !ok && out.contains("File exists"),
        "an export never overwrites: {out}"
    );
    let (ok, out) = run(args(&[
        "audit",
        "verify-export",
        file.to_str().unwrap(),
        "--pubkey",
        key.trim(),
    ]))
    .await;
    assert!(ok && out.contains("verified"), "{out}");
    let (ok, out) = run(args(&["audit", "verify"])).await;
    assert!(ok && out.contains("intact"), "{out}");
}

#[tokio::test]
async fn an_entry_rewritten_in_the_database_is_never_signed() {
    let refusal = tampered_then_exported(&[
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET detail = '{}' WHERE sequence = (SELECT max(sequence) FROM audit_log)",
    ])
    .await;
    assert!(
        refusal.contains("does not verify against the chain"),
        "{refusal}"
    );
}

/// Stored checkpoints are append-only by trigger; one rewritten anyway
/// (the trigger dropped first) — a link moved to match an altered log —
/// no longer carries this daemon's signature, and nothing is signed after
/// it.
#[tokio::test]
async fn a_checkpoint_rewritten_in_the_database_is_refused_and_never_signed_over() {
    let refusal = tampered_then_exported(&[
        "DROP TRIGGER audit_checkpoints_no_update",
        "UPDATE audit_checkpoints SET link = zeroblob(32) \
         WHERE sequence = (SELECT max(sequence) FROM audit_checkpoints)",
    ])
    .await;
    assert!(
        refusal.contains("is not signed by this daemon's key"),
        "{refusal}"
    );
}

/// Signs in, exports (which signs a checkpoint), leaves an entry after it
/// (a crash leaves it unsigned), checks that the store refuses to change
/// or remove a checkpoint, runs `tampering` on the stopped store, starts
/// the daemon again and exports: returns the log line that says why nothing
/// is signed (the export itself is refused).
async fn tampered_then_exported(tampering: &[&'static str]) -> String {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    assert!(!export(&root.session, 0).await.is_empty());
    // An entry after the checkpoint: a refused call is audited.
    let _ = crate::support::call_raw(&root.session, "/occc.v1.Nowhere/Probe").await;
    daemon.kill_hard();
    let (store, _) = dir.open_store().await;
    for statement in [
        "UPDATE audit_checkpoints SET at_unix_ms = 0",
        "DELETE FROM audit_checkpoints",
    ] {
        // (Without the triggers each would change the one checkpoint.)
        let refused = sqlx::query(statement)
            .execute(store.raw_pool())
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("audit_checkpoints is append-only"),
            "{statement}: {refused}"
        );
    }
    for &statement in tampering {
        sqlx::query(statement)
            .execute(store.raw_pool())
            .await
            .unwrap();
    }
    store.close().await;
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin_again(&dir, &daemon, root.person).await;
    let mut stream = root
        .audit()
        .export_audit(pb::ExportAuditRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut refusal = None;
    while let Some(item) = stream.next().await {
        if let Err(status) = item {
            refusal = Some(status);
            break;
        }
    }
    let refusal = refusal.expect("the export is refused");
    assert!(
        refusal.message().contains("could not be read"),
        "{refusal:?}"
    );
    dir.log()
        .lines()
        .find(|line| line.contains("not signing a checkpoint"))
        .expect("the daemon says why")
        .to_owned()
}

#[tokio::test]
async fn watches_are_limited_per_uid_and_give_their_place_back() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let mut open = Vec::new();
    for _ in 0..occcd::service::AUDIT_WATCHES_PER_UID {
        open.push(
            root.session
                .audit()
                .watch_audit(pb::WatchAuditRequest::default())
                .await
                .unwrap(),
        );
    }
    let refused = root
        .session
        .audit()
        .watch_audit(pb::WatchAuditRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains(&format!(
            "your OS user holds {} audit watches",
            occcd::service::AUDIT_WATCHES_PER_UID
        )),
        "{refused:?}"
    );
    drop(open);
    // The daemon notices the closed streams as their tasks end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while root
        .session
        .audit()
        .watch_audit(pb::WatchAuditRequest::default())
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a slot frees up once a watch closes"
        );
        tokio::task::yield_now().await;
    }
}

/// Logs `person` in again after a restart (sessions survive, but this
/// helper makes a fresh one).
async fn signed_in_super_admin_again(
    _dir: &DevDir,
    daemon: &RunningDaemon,
    mut person: occc_tests::people::Person,
) -> OcccClient {
    let anonymous = daemon.client().await;
    occc_tests::people::log_in_with_recovery_code(&anonymous, &mut person).await
}
