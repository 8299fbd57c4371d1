//! Server streams that end when their caller's session does.
//!
//! Invariant: a stream opened with a session keeps sending only while that
//! session is usable from the same uid and its row's role and elevation
//! still hold — re-checked at once whenever any session is removed, every
//! [`RECHECK_EVERY`], and after every [`RECHECK_AFTER_ITEMS`] items however
//! busy the stream; the first failed check ends the stream with the status
//! the gate would give a new call (UNAUTHENTICATED or PERMISSION_DENIED).
//! Items produced before a revocation are delivered before the stream ends
//! (a quarantine's own status reaches the watchers it then logs out); a
//! client too slow to take an item keeps being re-checked while it waits.
//! Every such stream holds a place of its peer uid's share
//! ([`STREAMS_PER_UID`], [`STREAMS_TOTAL`]) from before its handler does any
//! work until the client has taken its last item or gone, however it ends
//! (the place lives in the stream tonic sends from, not in the producer).
//! Items already buffered for the client (at most [`BUFFER`]) still reach
//! it after the producer ended.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::Status;

use super::status::refusal_status;
use crate::{
    auth::AuthEngine,
    gate::{Caller, meets},
    transport::uid_shares::{Share, UidShares},
};

/// Long-lived streams (watches, exports, log follows, backups) one peer
/// uid may hold at once: a frontend needs a few; a uid holding its share
/// leaves every other uid's whole.
pub const STREAMS_PER_UID: usize = 16;
/// Long-lived streams in all.
pub const STREAMS_TOTAL: usize = 256;

/// The shares of long-lived streams, one per daemon.
#[must_use]
pub fn stream_places() -> Arc<UidShares> {
    UidShares::new(STREAMS_PER_UID, STREAMS_TOTAL)
}

/// A place for a stream of `caller`'s uid, or RESOURCE_EXHAUSTED naming
/// the bound reached. Take it before any work for the stream.
pub fn stream_place(places: &Arc<UidShares>, caller: &Caller) -> Result<Share, Status> {
    places.take(caller.peer.uid).map_err(Status::from)
}

/// How often an open stream re-checks its session, besides every removal.
pub const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// A busy stream re-checks at least this often, counted in items.
pub const RECHECK_AFTER_ITEMS: usize = 64;
/// Items buffered towards a slow client.
const BUFFER: usize = 16;
/// How long an ended stream waits for a slow client to take its status.
const FINAL_STATUS_WITHIN: Duration = Duration::from_secs(10);

/// A boxed server stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Why `caller` may no longer receive, if so.
fn refusal(auth: &AuthEngine, caller: &Caller) -> Option<Status> {
    let session = match auth.recheck(&caller.session, caller.peer.uid) {
        Ok(session) => session,
        Err(err) => return Some(Status::from(err)),
    };
    meets(caller.policy, &session, auth.now())
        .err()
        .map(|refused| refusal_status(&refused, caller.policy.path))
}

/// How handing one item to the client went.
enum Handed {
    /// It is on its way.
    Sent,
    /// The session ended while the client was not reading.
    Refused(Status),
    /// The client is gone.
    Gone,
}

/// Hands `item` to the client, re-checking the session while the client is
/// too slow to take it.
async fn hand_over<T>(
    sender: &mpsc::Sender<Result<T, Status>>,
    item: Result<T, Status>,
    removals: &mut tokio::sync::watch::Receiver<u64>,
    auth: &AuthEngine,
    caller: &Caller,
) -> Handed {
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.reset();
    loop {
        tokio::select! {
            biased;
            permit = sender.reserve() => {
                return match permit {
                    Ok(permit) => {
                        permit.send(item);
                        Handed::Sent
                    }
                    Err(_) => Handed::Gone,
                };
            }
            changed = removals.changed() => {
                if changed.is_err() {
                    return Handed::Gone;
                }
                if let Some(status) = refusal(auth, caller) {
                    return Handed::Refused(status);
                }
            }
            _ = recheck.tick() => {
                if let Some(status) = refusal(auth, caller) {
                    return Handed::Refused(status);
                }
            }
        }
    }
}

/// Whether `caller` is still admitted (checked again after slow work done
/// before a stream starts).
pub fn still_allowed(auth: &AuthEngine, caller: &Caller) -> Result<(), Status> {
    refusal(auth, caller).map_or(Ok(()), Err)
}

/// The items tonic sends, with the stream's place: given back when tonic
/// drops it (everything taken, or the client gone), so a finished stream
/// whose items wait unread still counts.
struct Placed<T> {
    items: ReceiverStream<Result<T, Status>>,
    _place: Share,
}

impl<T> Stream for Placed<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.items).poll_next(cx)
    }
}

/// `inner`, ended as soon as `caller`'s session no longer admits it;
/// `place` is held until the client has taken the last item or gone.
pub fn session_bound<T, S>(
    inner: S,
    auth: Arc<AuthEngine>,
    caller: Caller,
    place: Share,
) -> BoxStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut inner = Box::pin(inner);
        let mut removals = auth.sessions().removals();
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unchecked = 0;
        loop {
            let ended = tokio::select! {
                // Items already produced go first, so what happened before a
                // revocation is delivered before the stream ends for it.
                biased;
                item = inner.next() => match item {
                    Some(item) => {
                        unchecked += 1;
                        match hand_over(&sender, item, &mut removals, &auth, &caller).await {
                            Handed::Gone => return,
                            Handed::Refused(status) => Some(status),
                            Handed::Sent if unchecked >= RECHECK_AFTER_ITEMS => {
                                unchecked = 0;
                                refusal(&auth, &caller)
                            }
                            Handed::Sent => None,
                        }
                    }
                    None => return,
                },
                changed = removals.changed() => match changed {
                    Ok(()) => refusal(&auth, &caller),
                    Err(_) => return,
                },
                _ = recheck.tick() => {
                    unchecked = 0;
                    refusal(&auth, &caller)
                }
                () = sender.closed() => return,
            };
            if let Some(status) = ended {
                // The last word, if the client takes it in time.
                let _ = tokio::time::timeout(FINAL_STATUS_WITHIN, sender.send(Err(status))).await;
                return;
            }
        }
    });
    Box::pin(Placed {
        items: ReceiverStream::new(receiver),
        _place: place,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_producer_keeps_its_place_until_the_client_took_every_item() {
        let places = UidShares::new(1, 4);
        let (sender, receiver) = mpsc::channel::<Result<u32, Status>>(4);
        sender.send(Ok(1)).await.unwrap();
        sender.send(Ok(2)).await.unwrap();
        drop(sender);
        let mut placed = Placed {
            items: ReceiverStream::new(receiver),
            _place: places.take(1000).unwrap(),
        };
        assert!(places.take(1000).is_err(), "done producing, not yet taken");
        assert_eq!(placed.next().await.map(Result::ok), Some(Some(1)));
        assert_eq!(placed.next().await.map(Result::ok), Some(Some(2)));
        assert!(placed.next().await.is_none());
        drop(placed);
        assert!(places.take(1000).is_ok(), "given back with the stream");
    }
}
