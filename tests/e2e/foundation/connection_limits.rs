//! Issue #16: a slowloris-style peer — one uid opening connections that
//! never send a byte, or long-lived streams it never closes — holds its own
//! uid's share and starves nobody else; a connection that never sends its
//! HTTP/2 preface is closed at its deadline and its place comes back.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{ensure_other_user, is_root, peer_as, socket_group_config},
    people::{GOOD_PASSWORD, signed_in_super_admin},
    skip,
};
use occcd::{service::STREAMS_PER_UID, transport::admission::CONNECTIONS_PER_UID};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};
use tonic::Code;

/// Whether the daemon closed `stream` at once (refused) rather than
/// greeting it (HTTP/2 settings) or waiting.
async fn closed_at_once(stream: &mut UnixStream) -> bool {
    let mut byte = [0_u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Another OS user's uid and a daemon it can reach (socket group, folder
/// mode 0711); `None` (the test said why) when not root.
pub(super) async fn reachable_by_another_uid(test: &str) -> Option<(u32, DevDir, RunningDaemon)> {
    if !is_root() {
        skip::unavailable(test, "root (it switches to another OS user)");
        return None;
    }
    let (other_uid, _) = ensure_other_user();
    let dir = DevDir::new();
    // Silent connections are held longer than these tests run.
    dir.set_config(&format!(
        "{}preface_within_secs = 3600\n",
        socket_group_config()
    ));
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let daemon = RunningDaemon::start(&dir).await;
    Some((other_uid, dir, daemon))
}

#[tokio::test]
async fn one_uid_holding_half_open_connections_starves_no_other_uid() {
    let Some((other_uid, dir, daemon)) =
        reachable_by_another_uid("one_uid_holding_half_open_connections_starves_no_other_uid")
            .await
    else {
        return;
    };
    let socket = dir.socket();

    // Root opens connections that never send a byte until one is refused.
    let mut held = Vec::new();
    let refused = loop {
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        if closed_at_once(&mut stream).await {
            break held.len();
        }
        held.push(stream);
        assert!(
            held.len() <= CONNECTIONS_PER_UID,
            "no limit after {}",
            held.len()
        );
    };
    // Its share, less what the harness holds.
    assert!(
        refused + 2 >= CONNECTIONS_PER_UID,
        "refused after {refused}"
    );

    // Another uid is served at once; root's next connection is refused.
    let started = Instant::now();
    let answer = peer_as(other_uid, &socket, &["login-methods", "nobody"]).await;
    assert!(answer.starts_with("ok"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut again = UnixStream::connect(&socket).await.unwrap();
    assert!(closed_at_once(&mut again).await);

    // Once root lets go, it is served again; the daemon said so once.
    drop(held);
    drop(again);
    // The daemon sees the closes within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = daemon.client().await;
    let mut served = false;
    for _ in 0..50 {
        if client.daemon_info().await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "served again once the connections closed");
    let log = dir.log();
    assert_eq!(
        log.matches("refusing connections").count(),
        1,
        "one warning per burst"
    );
    assert!(daemon.terminate().await.success());
}

/// HTTP/2's client preface and an empty SETTINGS frame: what a client
/// sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Whether the daemon closed `stream` within `within` (what it sent
/// meanwhile is read and dropped).
async fn closed_within(stream: &mut UnixStream, within: Duration) -> bool {
    let mut received = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .is_ok()
}

#[tokio::test]
async fn connections_that_never_send_their_preface_are_closed_and_their_places_come_back() {
    let dir = DevDir::new();
    dir.set_config("[socket]\npreface_within_secs = 1\n");
    let daemon = RunningDaemon::start(&dir).await;
    let socket = dir.socket();
    // A connection that greeted: the deadline is not for it.
    let mut greeted = UnixStream::connect(&socket).await.unwrap();
    greeted.write_all(PREFACE).await.unwrap();
    greeted.write_all(&EMPTY_SETTINGS).await.unwrap();
    // 24 bytes that are not the preface: closed by HTTP/2 at once.
    let mut garbage = UnixStream::connect(&socket).await.unwrap();
    garbage.write_all(&[b'x'; PREFACE.len()]).await.unwrap();
    assert!(
        closed_within(&mut garbage, Duration::from_millis(500)).await,
        "a wrong preface is refused before the deadline"
    );

    // Silent connections fill the uid's share; the next one is refused.
    let mut silent = Vec::new();
    for _ in 0..CONNECTIONS_PER_UID {
        silent.push(UnixStream::connect(&socket).await.unwrap());
    }
    let mut over = UnixStream::connect(&socket).await.unwrap();
    assert!(closed_at_once(&mut over).await, "over the uid's share");

    // Each is closed at its deadline (the server's settings, then the end).
    let waited = Instant::now();
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "still open {:?} after",
            waited.elapsed()
        );
    }

    // The places came back; the greeted connection is still open.
    let client = daemon.client().await;
    client.daemon_info().await.unwrap();
    assert!(
        !closed_within(&mut greeted, Duration::from_secs(2)).await,
        "the connection that greeted was closed"
    );
    drop(greeted);
    assert!(daemon.terminate().await.success());
}

#[tokio::test]
async fn one_uid_holding_its_long_lived_streams_starves_no_other_uid() {
    let Some((other_uid, dir, daemon)) =
        reachable_by_another_uid("one_uid_holding_its_long_lived_streams_starves_no_other_uid")
            .await
    else {
        return;
    };
    let root = signed_in_super_admin(&dir, &daemon).await;

    // Root opens integrity and audit watches, never reading them, until
    // one is refused: its share, whatever the kind.
    let mut held_integrity = Vec::new();
    let mut held_audit = Vec::new();
    let refused = loop {
        let opened = if held_integrity.len() <= held_audit.len() {
            root.session
                .integrity()
                .watch_integrity(pb::WatchIntegrityRequest {})
                .await
                .map(|stream| held_integrity.push(stream))
        } else {
            root.session
                .audit()
                .watch_audit(pb::WatchAuditRequest::default())
                .await
                .map(|stream| held_audit.push(stream))
        };
        if let Err(status) = opened {
            break status;
        }
        assert!(
            held_integrity.len() + held_audit.len() <= STREAMS_PER_UID,
            "no limit after {}",
            held_integrity.len() + held_audit.len()
        );
    };
    assert_eq!(held_integrity.len() + held_audit.len(), STREAMS_PER_UID);
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("your OS user holds 16 long-lived streams"),
        "{refused:?}"
    );
    // Exports and backups count too; short calls go on.
    let export = root
        .session
        .audit()
        .export_audit(pb::ExportAuditRequest::default())
        .await
        .unwrap_err();
    assert_eq!(export.code(), Code::ResourceExhausted, "{export:?}");
    assert!(
        root.session
            .auth()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .is_ok()
    );

    // Another uid logs in and opens a watch meanwhile.
    let created = root
        .session
        .users()
        .create_user(pb::CreateUserRequest {
            username: "otto".into(),
            role: pb::UserRole::Viewer.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();
    let answer = peer_as(
        other_uid,
        &dir.socket(),
        &[
            "enrol-and-watch",
            "otto",
            &created.enrollment_token,
            GOOD_PASSWORD,
        ],
    )
    .await;
    assert_eq!(answer.trim(), "ok watching", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // Root closes one: its next stream is served once the daemon notices.
    held_integrity.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match root
            .session
            .integrity()
            .watch_integrity(pb::WatchIntegrityRequest {})
            .await
        {
            Ok(stream) => {
                held_integrity.push(stream);
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(Instant::now() < deadline, "the place never came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop((held_integrity, held_audit));
    assert!(daemon.terminate().await.success());
}
