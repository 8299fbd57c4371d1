//! What a restart makes of the stored sessions: the auth engine started a
//! second time over the same store (the daemon's start-up path).
//!
//! Invariant under test: start-up loads only sessions not yet ended by
//! their idle timeout or lifetime, and deletes the rows of loaded sessions
//! no longer current (an older account generation).

use super::{
    engine::AuthEngine,
    test_harness::{PEER, config, harness},
};
use crate::{clock::Clock, config::AuthConfig};

#[tokio::test]
async fn start_up_loads_only_current_sessions_and_deletes_an_older_generations_row() {
    let h = harness().await;
    let secret = h.root().await;
    let kept = h.log_in("root", &secret).await;
    h.engine.persist_sessions().await;
    let now = h.clock.now().0;
    let (root_id, generation): (i64, i64) =
        sqlx::query_as("SELECT id, generation FROM users WHERE username = 'root'")
            .fetch_one(h.store.raw_pool())
            .await
            .unwrap();
    let defaults = AuthConfig::default();
    let idle = i64::try_from(defaults.idle_timeout_secs * 1_000).unwrap();
    let lifetime = i64::try_from(defaults.session_lifetime_secs * 1_000).unwrap();
    // (id, login time, last use, generation); each with a token hash of its own.
    let planted = [
        (
            "idle-ended",
            now - 1_000 - idle,
            now - 1_000 - idle,
            generation,
        ),
        (
            "lifetime-ended",
            now - 1_000 - lifetime,
            now - 1_000,
            generation,
        ),
        ("older-generation", now - 1_000, now - 1_000, generation - 1),
    ];
    for (index, (id, created, last_seen, row_generation)) in planted.into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, peer_uid, created_at, last_seen_at, generation) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(vec![u8::try_from(index).unwrap(); 32])
        .bind(root_id)
        .bind(i64::from(PEER.uid))
        .bind(created)
        .bind(last_seen)
        .bind(row_generation)
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    }

    let again = AuthEngine::start(
        h.store.clone(),
        &h.master,
        h.audit.clone(),
        h.clock.clone(),
        &config(),
        h.dir.path().to_path_buf(),
    )
    .await
    .unwrap();
    let loaded = again.sessions().live(None, h.clock.now());
    let ids: Vec<&str> = loaded.iter().map(|session| session.id.as_str()).collect();
    assert_eq!(ids, [kept.session.id.as_str()], "only the current session");
    assert!(
        again.authenticate(kept.token.expose(), PEER.uid).is_ok(),
        "it goes on after the restart"
    );
    let rows: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions ORDER BY id")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    let mut expected = vec![
        kept.session.id.clone(),
        "idle-ended".to_owned(),
        "lifetime-ended".to_owned(),
    ];
    expected.sort();
    assert_eq!(
        rows, expected,
        "the older generation's row is deleted at start; the ended ones are \
         left to the minute's persist (never loaded)"
    );
    again.persist_sessions().await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(rows, [kept.session.id.as_str()], "the persist deletes them");
    drop(again);
    h.finish().await;
}
