//! How many connections each peer may hold and how long it may keep one
//! without taking part: at most [`CONNECTIONS_PER_UID`] open connections per
//! uid and [`CONNECTIONS_TOTAL`] in all; each is closed unless the client's
//! HTTP/2 preface (its first [`PREFACE_BYTES`] bytes) arrives in time
//! ([`Deadlines::preface_within`]), and whenever a write has waited too long
//! for the peer to read ([`Deadlines::write_stalled_after`]).
//!
//! Invariant: a connection over either limit is closed as soon as it is
//! accepted (on Windows, as soon as its user is known), before a byte is
//! written to it, so a peer that opens connections and never speaks (or
//! never reads) holds only its own uid's share and never starves another
//! uid; a connection whose preface has not been read by its deadline, or
//! whose peer has read too little for a waiting write to go through in its
//! time (on Linux about three quarters of the socket buffer), fails its
//! next read or write and is closed by the server; a connection's place is
//! given back when the server drops it, however it ended. A peer whose uid
//! the kernel does not report is refused.

use std::{
    collections::HashSet,
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};
use tonic::transport::server::Connected;

use super::uid_shares::{Share, UidShares};

/// Open connections one uid may hold.
pub const CONNECTIONS_PER_UID: usize = 64;
/// Open connections in all.
pub const CONNECTIONS_TOTAL: usize = 1024;
/// Length of the HTTP/2 client preface (RFC 9113, section 3.4), which an
/// HTTP/2 client sends as soon as it connects.
pub const PREFACE_BYTES: usize = 24;

/// How long an admitted connection may go without taking part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// From accepting the connection to having read its preface.
    pub preface_within: Duration,
    /// How long one write may wait for the peer to read enough for it to go
    /// through (it reads nothing or next to nothing: stopped, hung, or
    /// holding the connection on purpose); a write that goes through starts
    /// the wait again.
    pub write_stalled_after: Duration,
}

/// Who holds how many connections, and how long they may stay silent.
#[derive(Debug)]
pub struct Admission {
    shares: Arc<UidShares>,
    /// Uids refused since they were last admitted (one warning per burst).
    refusing: Mutex<HashSet<u32>>,
    deadlines: Deadlines,
}

/// One admitted connection's place; given back when dropped.
pub type Place = Share;

impl Admission {
    /// The limits above, and `deadlines` for every connection admitted.
    #[must_use]
    pub fn new(deadlines: Deadlines) -> Self {
        Self {
            shares: UidShares::new(CONNECTIONS_PER_UID, CONNECTIONS_TOTAL),
            refusing: Mutex::default(),
            deadlines,
        }
    }

    fn refusing(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.refusing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection of `uid`, if it is under both limits.
    pub fn admit(&self, uid: u32) -> Option<Place> {
        match self.shares.take(uid) {
            Ok(place) => {
                self.refusing().remove(&uid);
                Some(place)
            }
            Err(_) => {
                if self.refusing().insert(uid) {
                    tracing::warn!(
                        uid,
                        of_uid = self.shares.held_by(uid),
                        total = self.shares.held_in_all(),
                        "refusing connections: the peer's uid holds {CONNECTIONS_PER_UID} or the \
                         daemon {CONNECTIONS_TOTAL} (logged once until one is admitted again)"
                    );
                }
                None
            }
        }
    }

    /// `stream` of `uid` with its place and its deadlines (the preface's
    /// starting now), or `None` (dropped: closed) if `uid` is over a limit.
    /// Call it within the runtime (the deadlines are tokio timers).
    pub fn admit_stream<S>(&self, uid: u32, stream: S) -> Option<AdmittedStream<S>> {
        let place = self.admit(uid)?;
        Some(AdmittedStream {
            stream,
            greeting: Some(Greeting {
                deadline: timer(self.deadlines.preface_within),
                awaited: PREFACE_BYTES,
            }),
            write_stall: None,
            deadlines: self.deadlines,
            uid,
            _place: place,
        })
    }

    /// Connections `uid` holds now.
    #[must_use]
    pub fn held_by(&self, uid: u32) -> usize {
        self.shares.held_by(uid)
    }
}

/// A deadline: a tokio timer, like hyper's keepalive beside it (tests
/// advance tokio's paused clock; the daemon's Clock does not drive sockets).
fn timer(after: Duration) -> Pin<Box<Sleep>> {
    #[allow(clippy::disallowed_methods)]
    Box::pin(tokio::time::sleep(after))
}

/// The error that ends a connection of `uid` whose deadline passed (the
/// server closes it on this error), logged with `reason`.
fn deadline_passed(uid: u32, reason: String) -> io::Error {
    tracing::debug!(uid, %reason, "closing a connection: a deadline passed");
    io::Error::new(io::ErrorKind::TimedOut, reason)
}

/// The preface still awaited on a connection.
#[derive(Debug)]
struct Greeting {
    deadline: Pin<Box<Sleep>>,
    /// Preface bytes not yet read.
    awaited: usize,
}

/// An accepted connection with its place and its deadlines (see the
/// module invariant).
#[derive(Debug)]
pub struct AdmittedStream<S> {
    stream: S,
    /// `None` once the preface has arrived.
    greeting: Option<Greeting>,
    /// Set when a write found the peer's buffer full; `None` again as soon
    /// as a write goes through.
    write_stall: Option<Pin<Box<Sleep>>>,
    deadlines: Deadlines,
    uid: u32,
    _place: Place,
}

impl<S> AdmittedStream<S> {
    /// Pending while a write may still wait (the waker is registered with
    /// its deadline), else the error that ends the connection.
    fn write_waits<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let after = self.deadlines.write_stalled_after;
        let stall = self.write_stall.get_or_insert_with(|| timer(after));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Err(deadline_passed(
            self.uid,
            format!(
                "the peer read nothing for {} s while a write waited",
                after.as_secs_f64()
            ),
        )))
    }

    /// `written` with the stall cleared when it went through.
    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match written {
            Poll::Pending => self.write_waits(cx),
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

impl<S: Connected> Connected for AdmittedStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AdmittedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        // Read first: a preface that arrived in time is taken even when
        // this task is polled only after the deadline.
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(greeting) = this.greeting.as_mut() else {
            return read;
        };
        match read {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len().saturating_sub(before);
                greeting.awaited = greeting.awaited.saturating_sub(got);
                if greeting.awaited == 0 {
                    this.greeting = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if greeting.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(deadline_passed(
                    this.uid,
                    format!(
                        "no HTTP/2 preface within {} s",
                        this.deadlines.preface_within.as_secs_f64()
                    ),
                )))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AdmittedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.stream).poll_flush(cx);
        this.after_write(cx, flushed)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Through the same deadline as every other write.
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let shut = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.after_write(cx, shut)
    }
}

/// The connections of `listener` that `admission` admits; the others are
/// closed as they come (dropped unread).
#[cfg(unix)]
pub fn admitted(
    listener: tokio::net::UnixListener,
    admission: Arc<Admission>,
) -> impl tokio_stream::Stream<Item = io::Result<AdmittedStream<tokio::net::UnixStream>>> + Send + 'static
{
    use tokio_stream::{StreamExt, wrappers::UnixListenerStream};
    UnixListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Err(err) => Some(Err(err)),
        Ok(stream) => {
            let uid = stream.peer_cred().ok()?.uid();
            admission.admit_stream(uid, stream).map(Ok)
        }
    })
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::UnixStream,
        time::Instant,
    };

    use super::*;

    const WITHIN: Duration = Duration::from_secs(10);
    const STALL: Duration = Duration::from_secs(40);
    const DEADLINES: Deadlines = Deadlines {
        preface_within: WITHIN,
        write_stalled_after: STALL,
    };

    #[test]
    fn a_uid_gets_its_share_and_others_are_admitted_and_one_warning_per_burst() {
        let admission = Admission::new(DEADLINES);
        let mine: Vec<Place> = (0..CONNECTIONS_PER_UID)
            .map(|_| admission.admit(1000).unwrap())
            .collect();
        assert!(admission.admit(1000).is_none(), "over its share");
        assert!(admission.refusing().contains(&1000));
        let other = admission.admit(1001).expect("another uid is admitted");
        drop(mine);
        assert_eq!(admission.held_by(1000), 0);
        assert!(admission.admit(1000).is_some(), "places come back");
        assert!(!admission.refusing().contains(&1000), "the burst is over");
        drop(other);
    }

    /// An admitted server end of a socket pair, and the client end.
    fn admitted_pair(admission: &Admission) -> (AdmittedStream<UnixStream>, UnixStream) {
        let (server, client) = UnixStream::pair().unwrap();
        (admission.admit_stream(1000, server).unwrap(), client)
    }

    /// A server end whose preface was read, and the client end.
    async fn greeted_pair(admission: &Admission) -> (AdmittedStream<UnixStream>, UnixStream) {
        let (mut server, mut client) = admitted_pair(admission);
        client.write_all(&[b'P'; PREFACE_BYTES]).await.unwrap();
        let mut preface = [0_u8; PREFACE_BYTES];
        server.read_exact(&mut preface).await.unwrap();
        (server, client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_at_its_preface_deadline_and_gives_its_place_back() {
        let admission = Admission::new(DEADLINES);
        let (mut server, _client) = admitted_pair(&admission);
        assert_eq!(admission.held_by(1000), 1);
        let started = Instant::now();
        let mut byte = [0_u8; 1];
        let early = tokio::time::timeout(WITHIN - Duration::from_millis(1), server.read(&mut byte));
        assert!(early.await.is_err(), "still open just before the deadline");
        let err = tokio::time::timeout(WITHIN, server.read(&mut byte))
            .await
            .expect("closed at the deadline")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), WITHIN);
        assert!(
            err.to_string().contains("no HTTP/2 preface within 10 s"),
            "{err}"
        );
        drop(server);
        assert_eq!(admission.held_by(1000), 0, "the place comes back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_preface_one_byte_short_is_closed_at_the_deadline() {
        let admission = Admission::new(DEADLINES);
        let (mut server, mut client) = admitted_pair(&admission);
        client.write_all(&[b'P'; PREFACE_BYTES - 1]).await.unwrap();
        let mut read = [0_u8; PREFACE_BYTES];
        let mut got = 0;
        let err = loop {
            let reading = tokio::time::timeout(WITHIN * 2, server.read(&mut read[got..]));
            match reading.await.expect("closed at the deadline") {
                Ok(n) => got += n,
                Err(err) => break err,
            }
        };
        assert_eq!(got, PREFACE_BYTES - 1, "what came is read");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_preface_that_came_in_time_is_read_even_after_the_deadline() {
        let admission = Admission::new(DEADLINES);
        let (mut server, mut client) = admitted_pair(&admission);
        client.write_all(&[b'P'; PREFACE_BYTES]).await.unwrap();
        tokio::time::advance(WITHIN * 2).await;
        let mut read = [0_u8; PREFACE_BYTES];
        server.read_exact(&mut read).await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_secs(3_600), server.read(&mut read));
        assert!(quiet.await.is_err(), "no deadline after the preface");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sent_its_preface_in_pieces_may_stay_quiet() {
        let admission = Admission::new(DEADLINES);
        let (mut server, mut client) = admitted_pair(&admission);
        let mut read = [0_u8; PREFACE_BYTES];
        for piece in [&[b'P'; 10][..], &[b'R'; PREFACE_BYTES - 10][..]] {
            tokio::time::advance(WITHIN / 3).await;
            client.write_all(piece).await.unwrap();
            let n = server.read(&mut read).await.unwrap();
            assert_eq!(n, piece.len());
        }
        let quiet = tokio::time::timeout(Duration::from_secs(3_600), server.read(&mut read));
        assert!(quiet.await.is_err(), "no deadline after the preface");
        client.write_all(b"x").await.unwrap();
        assert_eq!(server.read(&mut read).await.unwrap(), 1);
        assert_eq!(admission.held_by(1000), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_nothing_is_cut_off_when_a_write_has_waited_its_time() {
        let admission = Admission::new(DEADLINES);
        let (mut server, _client) = greeted_pair(&admission).await;
        let chunk = [7_u8; 64 * 1024];
        let started = Instant::now();
        let mut sent = 0_usize;
        let err = loop {
            let writing = tokio::time::timeout(STALL * 2, server.write(&chunk));
            match writing.await.expect("cut off at the stall deadline") {
                Ok(n) => sent += n,
                Err(err) => break err,
            }
        };
        assert!(sent > 0, "the buffers took something first");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            started.elapsed(),
            STALL,
            "cut off when the write had waited"
        );
        assert!(err.to_string().contains("read nothing for 40 s"), "{err}");
        drop(server);
        assert_eq!(admission.held_by(1000), 0, "the place comes back");
    }

    #[tokio::test(start_paused = true)]
    async fn vectored_writes_wait_under_the_same_deadline() {
        let admission = Admission::new(DEADLINES);
        let (mut server, _client) = greeted_pair(&admission).await;
        assert!(server.is_write_vectored(), "passed on from the socket");
        let chunk = [7_u8; 32 * 1024];
        let started = Instant::now();
        let err = loop {
            let slices = [io::IoSlice::new(&chunk), io::IoSlice::new(&chunk)];
            let writing = tokio::time::timeout(STALL * 2, server.write_vectored(&slices));
            if let Err(err) = writing.await.expect("cut off at the stall deadline") {
                break err;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), STALL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_slowly_but_keeps_reading_is_never_cut_off() {
        let admission = Admission::new(DEADLINES);
        let (mut server, mut client) = greeted_pair(&admission).await;
        const TOTAL: usize = 4 * 1024 * 1024;
        let writer = tokio::spawn(async move {
            server.write_all(&vec![7_u8; TOTAL]).await?;
            server.flush().await
        });
        let mut received = 0;
        let mut chunk = vec![0_u8; 256 * 1024];
        let started = Instant::now();
        while received < TOTAL {
            // Each read well within the stall time of the last one.
            tokio::time::advance(STALL * 3 / 4).await;
            match client.read(&mut chunk).await.unwrap() {
                0 => break,
                n => received += n,
            }
        }
        assert_eq!(received, TOTAL, "cut off after {received} bytes");
        writer.await.unwrap().expect("never cut off");
        assert!(
            started.elapsed() > STALL * 2,
            "slower than one stall time in all"
        );
    }
}
