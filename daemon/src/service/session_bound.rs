//! Server streams, and long reads, that end when their caller's session does.
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
//! (the place lives in the stream tonic sends from, not in the producer),
//! which bounds what a uid's unread streams buffer. A producer whose client
//! takes nothing for [`STALLED_AFTER`] while an item waits stops — and with
//! it what it held (an export's or a watch's own place, store reads, a log
//! follow) — leaving DEADLINE_EXCEEDED, or the refusal it was ending with,
//! as the stream's last word. Items already buffered for the client (at
//! most [`BUFFER`]) still reach it after the producer ended, then that
//! status. A long read run by [`while_allowed`] is
//! dropped at the first failed check, under the same triggers, and its
//! answer is given only if the caller is still admitted when it is ready.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{mpsc, watch};
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
/// How long a producer waits for its client to take an item before it
/// stops: a client that reads nothing keeps no export, follow or watch
/// running.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);
/// Items buffered towards a slow client.
const BUFFER: usize = 16;

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

/// The status a producer that ended leaves for the stream tonic sends
/// from, given after the last buffered item.
type LastWord = Arc<Mutex<Option<Status>>>;

fn leave(last_word: &LastWord, status: Status) {
    // Nothing panics while holding it; a poisoned one holds plain data.
    *last_word.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
}

fn stalled_status() -> Status {
    Status::deadline_exceeded(format!(
        "you took nothing from this stream for {} s: it was cut off; open it again",
        STALLED_AFTER.as_secs()
    ))
}

/// How handing one item to the client went.
#[derive(Debug)]
enum Handed {
    /// It is on its way.
    Sent,
    /// The session ended while the client was not reading.
    Refused(Status),
    /// The client took nothing for [`STALLED_AFTER`].
    Stalled,
    /// The client is gone.
    Gone,
}

/// Hands `item` to the client, re-checking (`check`) while the client is
/// too slow to take it, for at most [`STALLED_AFTER`].
async fn hand_over<T>(
    sender: &mpsc::Sender<Result<T, Status>>,
    item: Result<T, Status>,
    removals: &mut watch::Receiver<u64>,
    check: &impl Fn() -> Option<Status>,
) -> Handed {
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.reset();
    let handing = async {
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
                    if let Some(status) = check() {
                        return Handed::Refused(status);
                    }
                }
                _ = recheck.tick() => {
                    if let Some(status) = check() {
                        return Handed::Refused(status);
                    }
                }
            }
        }
    };
    tokio::time::timeout(STALLED_AFTER, handing)
        .await
        .unwrap_or(Handed::Stalled)
}

/// Whether `caller` is still admitted (checked again after slow work done
/// before a stream starts).
pub fn still_allowed(auth: &AuthEngine, caller: &Caller) -> Result<(), Status> {
    refusal(auth, caller).map_or(Ok(()), Err)
}

/// `work`'s answer, if `caller` is still admitted when it is ready; `work`
/// is dropped, and the refusal returned, as soon as a check fails — at every
/// session removal and every [`RECHECK_EVERY`] — so a logged-out caller's
/// read stops using the daemon. For reads only: dropping must lose nothing.
pub async fn while_allowed<T>(
    auth: &AuthEngine,
    caller: &Caller,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let mut removals = Some(auth.sessions().removals());
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.reset();
    tokio::pin!(work);
    loop {
        tokio::select! {
            answer = &mut work => {
                // Checked first: a refused caller learns nothing of the work,
                // not even its error.
                still_allowed(auth, caller)?;
                return answer;
            }
            changed = async {
                match removals.as_mut() {
                    Some(removals) => removals.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    // No more removals will be announced: the ticks remain.
                    removals = None;
                }
                still_allowed(auth, caller)?;
            }
            _ = recheck.tick() => still_allowed(auth, caller)?,
        }
    }
}

/// The next item of `items`, or DEADLINE_EXCEEDED if none comes within
/// [`STALLED_AFTER`] (`what` names the items for the message).
pub async fn next_within<T, S>(items: &mut S, what: &str) -> Result<Option<T>, Status>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    match tokio::time::timeout(STALLED_AFTER, items.next()).await {
        Ok(Some(item)) => item.map(Some),
        Ok(None) => Ok(None),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no {what} arrived for {} s: cut off; send it again",
            STALLED_AFTER.as_secs()
        ))),
    }
}

/// The items tonic sends, then the producer's last word if it left one,
/// with the stream's place: given back when tonic drops it (everything
/// taken, or the client gone), so a finished stream whose items wait unread
/// still counts.
struct Placed<T> {
    items: ReceiverStream<Result<T, Status>>,
    last_word: LastWord,
    _place: Share,
}

impl<T> Stream for Placed<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A closed channel keeps answering None; the last word is taken once.
        match Pin::new(&mut self.items).poll_next(cx) {
            Poll::Ready(None) => {
                let last_word = self
                    .last_word
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                Poll::Ready(last_word.map(Err))
            }
            other => other,
        }
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
    let removals = auth.sessions().removals();
    let (uid, path) = (caller.peer.uid, caller.policy.path);
    let check = move || refusal(&auth, &caller);
    bound(inner, check, removals, place, move || {
        tracing::warn!(
            uid,
            rpc = path,
            "a stream's client took nothing for {} s: its producer stopped",
            STALLED_AFTER.as_secs()
        );
    })
}

/// `inner`, ended at the first `check` that names a refusal (at every
/// removal, every [`RECHECK_EVERY`] and after [`RECHECK_AFTER_ITEMS`]
/// items), or when the client takes nothing for [`STALLED_AFTER`] while
/// an item waits (then `on_stall` runs); `place` stays with the stream.
fn bound<T, S>(
    inner: S,
    check: impl Fn() -> Option<Status> + Send + Sync + 'static,
    mut removals: watch::Receiver<u64>,
    place: Share,
    on_stall: impl FnOnce() + Send + 'static,
) -> BoxStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(BUFFER);
    let last_word = LastWord::default();
    let producer_word = Arc::clone(&last_word);
    tokio::spawn(async move {
        let mut inner = Box::pin(inner);
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unchecked = 0;
        let refused = loop {
            let ended = tokio::select! {
                // Items already produced go first, so what happened before a
                // revocation is delivered before the stream ends for it.
                biased;
                item = inner.next() => match item {
                    Some(item) => {
                        unchecked += 1;
                        match hand_over(&sender, item, &mut removals, &check).await {
                            Handed::Gone => return,
                            Handed::Stalled => {
                                leave(&producer_word, stalled_status());
                                on_stall();
                                return;
                            }
                            Handed::Refused(status) => Some(status),
                            Handed::Sent if unchecked >= RECHECK_AFTER_ITEMS => {
                                unchecked = 0;
                                check()
                            }
                            Handed::Sent => None,
                        }
                    }
                    None => return,
                },
                changed = removals.changed() => match changed {
                    Ok(()) => check(),
                    Err(_) => return,
                },
                _ = recheck.tick() => {
                    unchecked = 0;
                    check()
                }
                () = sender.closed() => return,
            };
            if let Some(status) = ended {
                break status;
            }
        };
        // The last word, after the items already buffered; a client that
        // takes nothing meanwhile gets it whenever it reads again.
        let sent = tokio::time::timeout(STALLED_AFTER, sender.send(Err(refused.clone()))).await;
        if sent.is_err() {
            leave(&producer_word, refused);
            on_stall();
        }
    });
    Box::pin(Placed {
        items: ReceiverStream::new(receiver),
        last_word,
        _place: place,
    })
}

#[cfg(test)]
#[path = "session_bound_tests.rs"]
mod tests;
