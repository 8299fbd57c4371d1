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

use std::{pin::Pin, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::Status;

use super::status::refusal_status;
use crate::{
    auth::AuthEngine,
    gate::{Caller, meets},
};

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

/// `inner`, ended as soon as `caller`'s session no longer admits it.
pub fn session_bound<T, S>(inner: S, auth: Arc<AuthEngine>, caller: Caller) -> BoxStream<T>
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
    Box::pin(ReceiverStream::new(receiver))
}
