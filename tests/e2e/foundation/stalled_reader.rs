//! Issue #16: a client that stops reading while the daemon writes to it —
//! its HTTP/2 windows wide open, so the daemon's writes fill the socket's
//! buffers and wait — is dropped once a write has waited a keepalive round,
//! with its streams, and its uid's places come back. (Unanswered pings alone
//! cannot drop it: the daemon's goodbye would wait behind the full buffers.)

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir,
    generated_audit::{GeneratedAudit, OverGeneratedAudit, super_admin_over_generated_audit},
    place_granted,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::UnixStream,
};

/// Entries in the log: an export of them is many times the socket's buffers.
const ENTRIES: u64 = 20_000;

/// A socket whose reading can be paused (the task polling it is not woken
/// until it is resumed); writing goes on.
struct Pausable {
    stream: UnixStream,
    paused: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl AsyncRead for Pausable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        {
            let mut paused = self.paused.lock().unwrap();
            if paused.0 {
                paused.1 = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pausable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Sockets the daemon (`pid`) has open now.
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Whether `session` may start an audit export now (one per uid); any
/// refusal but RESOURCE_EXHAUSTED fails.
async fn may_export(session: &OcccClient) -> bool {
    place_granted(
        session
            .audit()
            .export_audit(pb::ExportAuditRequest::default())
            .await,
    )
}

#[tokio::test]
async fn a_client_that_stops_reading_mid_export_is_dropped_and_its_places_come_back() {
    let dir = DevDir::new();
    dir.set_config("[socket]\nkeepalive_every_secs = 1\nkeepalive_answer_within_secs = 1\n");
    let shape = GeneratedAudit {
        count: ENTRIES,
        users: 10,
        rare_every: 1_000,
    };
    let OverGeneratedAudit {
        daemon, session, ..
    } = super_admin_over_generated_audit(&dir, "root", shape).await;
    let token = session.session().unwrap().expose().to_owned();

    // The session's own connection is open before counting.
    session.auth().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    let sockets_before = sockets_of(daemon.pid());

    // A raw HTTP/2 client with windows of a gigabyte starts an export.
    let paused = Arc::new(Mutex::new((false, None)));
    let socket = Pausable {
        stream: UnixStream::connect(dir.socket()).await.unwrap(),
        paused: Arc::clone(&paused),
    };
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 30)
        .initial_connection_window_size(1 << 30)
        .handshake::<_, bytes::Bytes>(socket)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::post("http://occcd/occc.v1.Audit/ExportAudit")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let (response, mut request_body) = client.send_request(request, false).unwrap();
    // One empty ExportAuditRequest: no compression, length 0.
    request_body
        .send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut lines = response.into_body();
    let first = lines.data().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert!(
        !may_export(&session).await,
        "the export holds the uid's place"
    );

    // It stops reading: the daemon's writes fill the buffers and wait.
    paused.lock().unwrap().0 = true;
    let stopped = Instant::now();
    let mut came_back = None;
    while stopped.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if may_export(&session).await {
            came_back = Some(stopped.elapsed());
            break;
        }
    }
    let came_back = came_back.expect("the export's place came back within 30 s");
    println!(
        "the stalled client's export place came back {:.2} s after it stopped reading",
        came_back.as_secs_f64()
    );
    // A keepalive round (1 s + 1 s) of waiting, well before the export's
    // own 60 s for an item nobody takes.
    assert!(came_back >= Duration::from_secs(2), "{came_back:?}");

    // The daemon let go of the connection without the client reading: its
    // place is free. (Without the write deadline the export ends at the
    // unanswered pings but the connection waits for the client to read.)
    let mut sockets = sockets_of(daemon.pid());
    while sockets > sockets_before && stopped.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        sockets = sockets_of(daemon.pid());
    }
    assert_eq!(
        sockets,
        sockets_before,
        "the stalled connection is still open {:?} after",
        stopped.elapsed()
    );
    println!(
        "and the daemon closed the connection {:.2} s after",
        stopped.elapsed().as_secs_f64()
    );

    // Reading again, the client finds the connection closed by the daemon
    // (what was buffered, then the end), not an export going on.
    let resume = {
        let mut paused = paused.lock().unwrap();
        paused.0 = false;
        paused.1.take()
    };
    if let Some(waker) = resume {
        waker.wake();
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = lines.data().await {}
        connection.await
    })
    .await;
    assert!(ended.is_ok(), "the daemon kept the stalled connection open");
    drop(session);
    assert!(daemon.terminate().await.success());
}
