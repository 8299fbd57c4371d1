//! Closing the store's pool so that no write-ahead log stays beside it.
//!
//! Invariant: when [`close_leaving_no_wal`] returns, the pool is closed and
//! a last connection of its own has checkpointed and removed the WAL — unless
//! another handle on the file is still open (another process; or a
//! connection whose opening was abandoned mid-way, which sqlx's worker thread
//! closes later) or the checkpoint failed (logged); then the WAL stays,
//! and callers that replace the file (a key rotation, a restore) check for it
//! and refuse. The last connection never creates the database.
//!
//! Why a last connection: SQLite checkpoints and deletes the WAL when the
//! last connection to the database closes, and a closing connection knows
//! it is the last only by taking the file's exclusive lock. sqlx closes the
//! pool's connections that come back while the pool closes each on its own
//! worker thread, concurrently: two closing at once each see the other still
//! open, and neither checkpoints (about one close in 1,500 with four
//! connections just used; a key rotation's rerun refused on it once). A
//! connection opened after the pool has closed is the only one; closing it
//! checkpoints and deletes what the others left.

use sqlx::{ConnectOptions as _, SqlitePool};

use crate::lifecycle::with_suffix;

/// Closes `pool` (read-write), then, if a WAL stayed, opens one connection
/// with the pool's own options and closes it alone.
pub(super) async fn close_leaving_no_wal(pool: &SqlitePool) {
    pool.close().await;
    let options = (*pool.connect_options()).clone().create_if_missing(false);
    let database = options.get_filename();
    if !with_suffix(database, "-wal").exists() {
        return;
    }
    let settled = async {
        let mut last = options.connect().await?;
        // The connection's pragmas (the key, WAL mode) read the database;
        // one statement makes sure it has opened the WAL before closing.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut last)
            .await?;
        sqlx::Connection::close(last).await
    }
    .await;
    // A WAL that stays because another process has the store open (a
    // command beside the daemon) is normal and not logged.
    if let Err(err) = settled {
        // SQLite's message only: statements are never logged.
        tracing::warn!(%err, database = %database.display(), "the store's write-ahead log could not be checkpointed after closing");
    }
}

#[cfg(test)]
mod tests {
    use sqlx::pool::PoolConnection;

    use crate::store::{
        Store,
        db_config::{NO_CHECKPOINT_ON_CLOSE, on_off_setting},
        open_for_test,
    };

    /// Turns SQLite's checkpoint at close off on `connection`: closing it,
    /// even last, leaves the WAL — what the race between closing
    /// connections does now and then, made certain.
    async fn no_checkpoint_on_close(connection: &mut PoolConnection<sqlx::Sqlite>) {
        let now = on_off_setting(connection, NO_CHECKPOINT_ON_CLOSE, 1).await;
        assert_eq!(now.unwrap(), 1);
    }

    /// A store whose every pooled connection has written and will not
    /// checkpoint when it closes.
    async fn store_whose_connections_never_checkpoint(folder: &std::path::Path) -> Store {
        let store = open_for_test(folder).await;
        let mut held = Vec::new();
        // The pool's maximum: every connection it has or will have.
        for _ in 0..4 {
            held.push(store.raw_pool().acquire().await.unwrap());
        }
        for connection in &mut held {
            no_checkpoint_on_close(connection).await;
            sqlx::query("CREATE TABLE IF NOT EXISTS t (x)")
                .execute(&mut **connection)
                .await
                .unwrap();
        }
        drop(held);
        store
    }

    /// Deterministic: no pooled connection checkpoints at close, as when
    /// they all close at once; the pool closed alone keeps the WAL (the
    /// check that the setup does what it says), the store's close does not.
    #[tokio::test]
    async fn a_write_ahead_log_no_pooled_connection_checkpointed_is_removed_at_close() {
        let folder = tempfile::tempdir().unwrap();
        let store = store_whose_connections_never_checkpoint(folder.path()).await;
        store.raw_pool().close().await;
        assert!(
            folder.path().join("db-wal").exists(),
            "the setup: a pool of connections that never checkpoint leaves its WAL"
        );

        let folder = tempfile::tempdir().unwrap();
        let store = store_whose_connections_never_checkpoint(folder.path()).await;
        store.close().await;
        assert!(
            !folder.path().join("db-wal").exists(),
            "the store's close checkpointed and removed the WAL its pool left"
        );
        let reopened = open_for_test(folder.path()).await;
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 't'")
            .fetch_one(reopened.raw_pool())
            .await
            .unwrap();
        assert_eq!(tables, 1, "what the WAL held reached the database");
    }

    /// The race itself: without the last connection, trials 503 and 762 of
    /// 1,000 kept the WAL in two of four runs (about half the runs never
    /// need the last connection; the test above is the deterministic one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_while_connections_come_back_leaves_no_write_ahead_log() {
        for trial in 0..1_000 {
            let folder = tempfile::tempdir().unwrap();
            let store = open_for_test(folder.path()).await;
            let pool = store.raw_pool();
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(pool.acquire().await.unwrap());
            }
            for connection in &mut held {
                sqlx::query("CREATE TABLE IF NOT EXISTS t (x)")
                    .execute(&mut **connection)
                    .await
                    .unwrap();
            }
            // Each goes back to the pool on a task of its own, which finds
            // the pool closing and closes its connection.
            drop(held);
            store.close().await;
            assert!(
                !folder.path().join("db-wal").exists(),
                "trial {trial}: the write-ahead log stayed after close"
            );
        }
    }
}
