//! How many connections each socket peer may hold: at most
//! [`CONNECTIONS_PER_UID`] open connections per uid and
//! [`CONNECTIONS_TOTAL`] in all.
//!
//! Invariant: a connection over either limit is closed as soon as it is
//! accepted, before a byte is read from it or written to it, so a peer that
//! opens connections and never speaks (or never reads) holds only its own
//! uid's share and never starves another uid; a connection's place is given
//! back when the server drops it, however it ended. A peer whose uid the
//! kernel does not report is refused.

use std::{
    collections::HashSet,
    io,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{UnixListener, UnixStream},
};
use tokio_stream::{Stream, StreamExt, wrappers::UnixListenerStream};
use tonic::transport::server::{Connected, UdsConnectInfo};

use super::uid_shares::{Share, UidShares};

/// Open connections one uid may hold.
pub const CONNECTIONS_PER_UID: usize = 64;
/// Open connections in all.
pub const CONNECTIONS_TOTAL: usize = 1024;

/// Who holds how many connections.
#[derive(Debug)]
pub struct Admission {
    shares: Arc<UidShares>,
    /// Uids refused since they were last admitted (one warning per burst).
    refusing: Mutex<HashSet<u32>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            shares: UidShares::new(CONNECTIONS_PER_UID, CONNECTIONS_TOTAL),
            refusing: Mutex::default(),
        }
    }
}

/// One admitted connection's place; given back when dropped.
pub type Place = Share;

impl Admission {
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

    /// Connections `uid` holds now.
    #[must_use]
    pub fn held_by(&self, uid: u32) -> usize {
        self.shares.held_by(uid)
    }
}

/// An accepted connection with its place.
#[derive(Debug)]
pub struct AdmittedStream {
    stream: UnixStream,
    _place: Place,
}

impl Connected for AdmittedStream {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for AdmittedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AdmittedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The connections of `listener` that `admission` admits; the others are
/// closed as they come (dropped unread).
pub fn admitted(
    listener: UnixListener,
    admission: Arc<Admission>,
) -> impl Stream<Item = io::Result<AdmittedStream>> + Send + 'static {
    UnixListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Err(err) => Some(Err(err)),
        Ok(stream) => {
            let uid = stream.peer_cred().ok()?.uid();
            let place = admission.admit(uid)?;
            Some(Ok(AdmittedStream {
                stream,
                _place: place,
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_share_and_others_are_admitted_and_one_warning_per_burst() {
        let admission = Admission::default();
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
}
