//! A session's row and the session in memory, on the real SQLCipher store:
//! a session that ends while its row is being written has the row deleted
//! (the write held deterministically behind another connection's write
//! transaction), and a session leaves memory only once its row is gone.

use super::{
    error::AuthError,
    test_harness::{PEER, harness},
};
use crate::clock::Clock;

#[tokio::test]
async fn a_session_ended_while_its_row_was_written_leaves_no_row() {
    let h = harness().await;
    h.root().await;
    ended_while_written(&h).await;
    h.finish().await;
}

async fn ended_while_written(h: &super::test_harness::Harness) {
    let core = h.engine.core();
    let account = core.account("root").await.unwrap();
    let began = core.sessions.login_epoch();
    // Another connection holds the write lock: the session's row waits.
    let mut holder = h.store.raw_pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let opening = core.open_session(&account, PEER, began);
    let mut opening = std::pin::pin!(opening);
    // In memory first, then the row: once it is in memory, its row is
    // being written.
    let in_memory = loop {
        let polled =
            std::future::poll_fn(|context| std::task::Poll::Ready(opening.as_mut().poll(context)))
                .await;
        assert!(polled.is_pending(), "opened without its row");
        if let Some(session) = core
            .sessions
            .live(Some(account.row.id), h.clock.now())
            .pop()
        {
            break session;
        }
        tokio::task::yield_now().await;
    };
    // It ends meanwhile (revoked by id, evicted, superseded).
    assert!(core.sessions.remove(&in_memory.id).is_some());
    sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
    drop(holder);
    let opened = opening.await;
    assert!(
        matches!(opened, Err(AuthError::AccountChanged)),
        "{opened:?}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE id = ?")
        .bind(&in_memory.id)
        .fetch_one(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(rows, 0, "its row outlived it");
}

#[tokio::test]
async fn a_session_whose_row_cannot_be_deleted_stays_in_memory_and_usable() {
    let h = harness().await;
    let secret = h.root().await;
    let root = h.log_in("root", &secret).await;
    let peer = PEER;
    // Its row cannot be deleted (the database refuses): logging out fails
    // and the session is still there — never gone from memory with its row
    // left behind to come back at the next start.
    sqlx::query(
        "CREATE TRIGGER sessions_kept BEFORE DELETE ON sessions \
         BEGIN SELECT RAISE(ABORT, 'deletes refused'); END",
    )
    .execute(h.store.raw_pool())
    .await
    .unwrap();
    let refused = h.engine.logins().logout(&root.session, peer).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(h.engine.authenticate(root.token.expose(), peer.uid).is_ok());
    sqlx::query("DROP TRIGGER sessions_kept")
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    h.engine.logins().logout(&root.session, peer).await.unwrap();
    assert!(
        h.engine
            .authenticate(root.token.expose(), peer.uid)
            .is_err()
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    h.finish().await;
}
