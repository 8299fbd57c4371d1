//! Issue #16: the totals bound every OS user together — eight uids at their
//! share of audit watches hold all 64, sixteen at their share of long-lived
//! streams hold all 256; the next uid is refused with the total's message,
//! short calls go on, and a holder that leaves gives its places back.

use std::time::{Duration, Instant};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    os_user::{ensure_member_user, spawn_peer_as},
    people::{GOOD_PASSWORD, signed_in_super_admin},
};
use occcd::service::{AUDIT_WATCHES_PER_UID, AUDIT_WATCHES_TOTAL, STREAMS_PER_UID, STREAMS_TOTAL};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout},
};
use tonic::Code;

use super::connection_limits::reachable_by_another_uid;

/// An `occc-peer enrol-and-hold` process as another OS user, holding its
/// watches until dropped (killed).
struct Holder {
    process: Child,
    _said: Lines<BufReader<ChildStdout>>,
}

/// Enrols account `share<n>` (made an administrator by `root`: watching the audit log is theirs) as OS user
/// `occc-e2e-share<n>` and holds `audit` audit watches, then `integrity`
/// integrity watches; returns the holder and its two lines (`ok audit <n>`
/// / `ok integrity <n>` or the refusal).
async fn hold_as_another_user(
    root: &OcccClient,
    socket: &std::path::Path,
    n: usize,
    audit: usize,
    integrity: usize,
) -> (Holder, [String; 2]) {
    let (uid, _) = ensure_member_user(&format!("occc-e2e-share{n}"));
    let account = format!("share{n}");
    let enrolment = root
        .users()
        .create_user(pb::CreateUserRequest {
            username: account.clone(),
            role: pb::UserRole::Admin.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .enrollment_token
        .clone();
    let (audit, integrity) = (audit.to_string(), integrity.to_string());
    let mut process = spawn_peer_as(
        uid,
        socket,
        &[
            "enrol-and-hold",
            &account,
            &enrolment,
            GOOD_PASSWORD,
            &audit,
            &integrity,
        ],
    );
    let mut said = BufReader::new(process.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    for _ in 0..2 {
        let line = tokio::time::timeout(Duration::from_secs(30), said.next_line())
            .await
            .expect("occc-peer answers within 30 s")
            .unwrap()
            .expect("occc-peer said a line");
        lines.push(line);
    }
    let lines: [String; 2] = lines.try_into().unwrap();
    (
        Holder {
            process,
            _said: said,
        },
        lines,
    )
}

/// An audit watch `session` opened, or the refusal (any refusal but
/// RESOURCE_EXHAUSTED fails).
async fn audit_watch(session: &OcccClient) -> Result<tonic::Streaming<pb::AuditEntry>, String> {
    match session
        .audit()
        .watch_audit(pb::WatchAuditRequest::default())
        .await
    {
        Ok(watch) => Ok(watch.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            Err(status.message().to_owned())
        }
    }
}

#[tokio::test]
async fn uids_at_their_shares_reach_the_totals_and_the_next_is_refused() {
    let Some((_, dir, daemon)) =
        reachable_by_another_uid("uids_at_their_shares_reach_the_totals_and_the_next_is_refused")
            .await
    else {
        return;
    };
    let root = signed_in_super_admin(&dir, &daemon).await;
    let socket = dir.socket();
    let streams = "long-lived streams (watches, exports, log follows, backups)";
    let audit_full_at = AUDIT_WATCHES_TOTAL / AUDIT_WATCHES_PER_UID;
    let streams_full_at = STREAMS_TOTAL / STREAMS_PER_UID;
    assert!(
        audit_full_at + 1 < streams_full_at,
        "the test fills audit watches first"
    );

    // Users 1..=8 hold their share of audit watches (and fill their share
    // of streams with integrity watches): all 64 audit watches are held.
    let mut holders = Vec::new();
    for n in 1..=audit_full_at {
        let integrity = STREAMS_PER_UID - AUDIT_WATCHES_PER_UID;
        let (holder, said) =
            hold_as_another_user(&root.session, &socket, n, AUDIT_WATCHES_PER_UID, integrity).await;
        assert_eq!(
            said,
            [
                format!("ok audit {AUDIT_WATCHES_PER_UID}"),
                format!("ok integrity {integrity}")
            ]
        );
        holders.push(holder);
    }
    // The ninth uid holds none of its own, yet gets no audit watch; its
    // integrity watches (its share of streams) are granted.
    let (holder, said) = hold_as_another_user(
        &root.session,
        &socket,
        audit_full_at + 1,
        1,
        STREAMS_PER_UID,
    )
    .await;
    assert_eq!(
        said,
        [
            format!(
                "error ResourceExhausted occcd holds {AUDIT_WATCHES_TOTAL} audit watches for all \
                 users already; retry in a moment"
            ),
            format!("ok integrity {STREAMS_PER_UID}")
        ]
    );
    holders.push(holder);

    // Users up to the fifteenth, and root, hold their share of streams:
    // all 256 are held.
    for n in audit_full_at + 2..streams_full_at {
        let (holder, said) =
            hold_as_another_user(&root.session, &socket, n, 0, STREAMS_PER_UID).await;
        assert_eq!(
            said,
            [
                "ok audit 0".to_owned(),
                format!("ok integrity {STREAMS_PER_UID}")
            ]
        );
        holders.push(holder);
    }
    let mut held_by_root = Vec::new();
    for _ in 0..STREAMS_PER_UID {
        let watch = root
            .session
            .integrity()
            .watch_integrity(pb::WatchIntegrityRequest {})
            .await
            .expect("root's share is whole");
        held_by_root.push(watch.into_inner());
    }

    // A sixteenth OS user holding nothing still enrols and logs in (short
    // calls go on), and its first stream is refused: the total is reached.
    let (_last, said) = hold_as_another_user(&root.session, &socket, streams_full_at, 0, 1).await;
    assert_eq!(
        said,
        [
            "ok audit 0".to_owned(),
            format!(
                "error ResourceExhausted occcd holds {STREAMS_TOTAL} {streams} for all users \
                 already; retry in a moment"
            )
        ]
    );

    // Root gives one stream back: the stream place is free again, but the
    // audit watches are still all held by users 1..=8.
    held_by_root.pop();
    let popped = Instant::now();
    let refused = loop {
        let refused = audit_watch(&root.session).await.unwrap_err();
        if !refused.starts_with("your OS user holds") {
            break refused;
        }
        assert!(
            popped.elapsed() < Duration::from_secs(10),
            "root's closed watch never gave its place back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused.contains(&format!("occcd holds {AUDIT_WATCHES_TOTAL} audit watches")),
        "{refused}"
    );
    // User 1 leaves (killed): its places come back, and root's audit watch
    // is served once the daemon saw the connection close.
    let mut first = holders.remove(0);
    first.process.kill().await.unwrap();
    let left = Instant::now();
    let watch = loop {
        match audit_watch(&root.session).await {
            Ok(watch) => break watch,
            Err(refused) => {
                assert!(
                    left.elapsed() < Duration::from_secs(10),
                    "user 1's places never came back: {refused}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    drop((watch, held_by_root, holders));
    assert!(daemon.terminate().await.success());
}
