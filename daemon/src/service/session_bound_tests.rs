//! Unit tests of session-bound streams: places kept and given back, and
//! clients that stall, on tokio's paused clock.

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
        last_word: LastWord::default(),
        _place: places.take(1000).unwrap(),
    };
    assert!(places.take(1000).is_err(), "done producing, not yet taken");
    assert_eq!(placed.next().await.map(Result::ok), Some(Some(1)));
    assert_eq!(placed.next().await.map(Result::ok), Some(Some(2)));
    assert!(placed.next().await.is_none());
    drop(placed);
    assert!(places.take(1000).is_ok(), "given back with the stream");
}

/// Producer of endless items holding `slot` (as an export holds its own
/// place) until it is dropped.
fn endless(slot: Share) -> impl Stream<Item = Result<u32, Status>> + Send + 'static {
    tokio_stream::iter(0..).map(move |item| {
        let _held = &slot;
        Ok(item)
    })
}

/// Items read until the stream's last word, and that word.
async fn read_to_the_end(stream: &mut BoxStream<u32>) -> (usize, Status) {
    let mut taken = 0;
    loop {
        match stream.next().await {
            Some(Ok(_)) => taken += 1,
            Some(Err(status)) => return (taken, status),
            None => panic!("ended without a status"),
        }
    }
}

fn no_removals() -> (watch::Sender<u64>, watch::Receiver<u64>) {
    watch::channel(0)
}

#[tokio::test(start_paused = true)]
async fn a_client_that_takes_nothing_stops_its_producer_and_keeps_the_place_until_it_reads() {
    let places = UidShares::new(1, 4);
    let exports = UidShares::new(1, 4);
    let (_removals, receiver) = no_removals();
    let (stalled, noticed) = tokio::sync::oneshot::channel();
    let producer = endless(exports.take(1000).unwrap());
    let mut stream = bound(
        producer,
        || None,
        receiver,
        places.take(1000).unwrap(),
        || {
            let _ = stalled.send(());
        },
    );
    tokio::time::advance(STALLED_AFTER - Duration::from_secs(1)).await;
    assert!(
        exports.take(1000).is_err(),
        "not yet: {STALLED_AFTER:?} not over"
    );
    noticed.await.expect("stopped once the time is over");
    assert!(
        exports.take(1000).is_ok(),
        "the producer and its slot are gone"
    );
    assert!(
        places.take(1000).is_err(),
        "the stream's place bounds what waits unread: kept until the client reads or goes"
    );
    // Reading again, the client gets what was buffered, then the reason.
    let (taken, ended) = read_to_the_end(&mut stream).await;
    assert_eq!(taken, BUFFER);
    assert_eq!(ended.code(), tonic::Code::DeadlineExceeded, "{ended:?}");
    assert!(stream.next().await.is_none());
    drop(stream);
    assert!(places.take(1000).is_ok(), "given back with the stream");
}

#[tokio::test(start_paused = true)]
async fn a_reading_client_is_never_cut_off() {
    let places = UidShares::new(1, 4);
    let exports = UidShares::new(1, 4);
    let (_removals, receiver) = no_removals();
    let mut stream = bound(
        endless(exports.take(1000).unwrap()),
        || None,
        receiver,
        places.take(1000).unwrap(),
        || {
            panic!("a reading client stalled");
        },
    );
    for _ in 0..10 {
        tokio::time::advance(STALLED_AFTER / 2).await;
        assert!(matches!(stream.next().await, Some(Ok(_))));
    }
    assert!(places.take(1000).is_err(), "still held by the open stream");
    assert!(exports.take(1000).is_err(), "its producer still runs");
}

#[tokio::test(start_paused = true)]
async fn a_refused_client_that_takes_nothing_gets_the_refusal_when_it_reads_again() {
    let places = UidShares::new(1, 4);
    let (removals, receiver) = no_removals();
    let revoked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let check = {
        let revoked = Arc::clone(&revoked);
        move || {
            revoked
                .load(std::sync::atomic::Ordering::SeqCst)
                .then(|| Status::unauthenticated("logged out"))
        }
    };
    // More items than the buffer holds: the producer waits for the
    // client when the session ends, then for it to take the refusal.
    let items = tokio_stream::iter(0..40)
        .map(Ok)
        .chain(tokio_stream::pending());
    let (stalled, noticed) = tokio::sync::oneshot::channel();
    let mut stream = bound(items, check, receiver, places.take(1000).unwrap(), || {
        let _ = stalled.send(());
    });
    tokio::task::yield_now().await;
    revoked.store(true, std::sync::atomic::Ordering::SeqCst);
    removals.send_modify(|count| *count += 1);
    noticed
        .await
        .expect("the producer stopped after the refusal waited");
    let (taken, ended) = read_to_the_end(&mut stream).await;
    assert_eq!(
        taken, BUFFER,
        "what was buffered before the revocation is delivered"
    );
    assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
}

#[tokio::test(start_paused = true)]
async fn an_upload_that_sends_nothing_is_cut_off() {
    let mut silent = tokio_stream::pending::<Result<u32, Status>>();
    let refused = next_within(&mut silent, "part of the archive")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DeadlineExceeded);
    assert!(
        refused.message().contains("part of the archive"),
        "{refused:?}"
    );
    let mut two = tokio_stream::iter([Ok(1), Ok(2)]);
    assert_eq!(next_within(&mut two, "part").await.unwrap(), Some(1));
    assert_eq!(next_within(&mut two, "part").await.unwrap(), Some(2));
    assert_eq!(next_within(&mut two, "part").await.unwrap(), None);
}
