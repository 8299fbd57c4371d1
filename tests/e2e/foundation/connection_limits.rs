//! Issue #16: a slowloris-style peer — one uid opening connections that
//! never send a byte — holds its own uid's share and starves nobody else.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{ensure_other_user, is_root, peer_as, socket_group_config},
    skip,
};
use occcd::transport::admission::CONNECTIONS_PER_UID;
use tokio::{io::AsyncReadExt, net::UnixStream};

/// Whether the daemon closed `stream` at once (refused) rather than
/// greeting it (HTTP/2 settings) or waiting.
async fn closed_at_once(stream: &mut UnixStream) -> bool {
    let mut byte = [0_u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn one_uid_holding_half_open_connections_starves_no_other_uid() {
    let test = "one_uid_holding_half_open_connections_starves_no_other_uid";
    if !is_root() {
        return skip::unavailable(test, "root (it switches to another OS user)");
    }
    let (other_uid, _) = ensure_other_user();
    let dir = DevDir::new();
    dir.set_config(&socket_group_config());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let daemon = RunningDaemon::start(&dir).await;
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
