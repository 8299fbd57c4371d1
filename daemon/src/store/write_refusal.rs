//! Whether the store takes changes. When occcd must not change its store —
//! the master key's file is gone or holds another key, so what it wrote
//! now could be lost with the next start — every connection is switched to
//! `PRAGMA query_only` as the pool hands it out (an idle one in
//! `before_acquire`, a new one in `after_connect`), and write transactions
//! are refused before they begin: writes fail with
//! [`super::StoreError::WritesRefused`], reads go on.
//!
//! Invariant: once refused, no connection is handed out without the pragma
//! matching the current state (a write that already holds its connection
//! finishes); a store never refused pays nothing for this.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, Ordering},
};

use sqlx::SqliteConnection;

/// The shared state, consulted by the pool on every hand-out.
#[derive(Debug, Default)]
pub(super) struct WriteRefusal {
    /// Why changes are refused, while they are.
    reason: RwLock<Option<String>>,
    /// Set at the first refusal: from then on every hand-out sets the
    /// pragma (on or off), since a connection may hold either.
    ever: AtomicBool,
}

impl WriteRefusal {
    pub(super) fn refuse(&self, reason: String) {
        *self
            .reason
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
        self.ever.store(true, Ordering::SeqCst);
    }

    pub(super) fn allow(&self) {
        *self
            .reason
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(super) fn reason(&self) -> Option<String> {
        self.reason
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The pool's hooks: sets `query_only` to the current state on
    /// `connection` (after the first refusal only).
    pub(super) async fn apply(
        refusal: Arc<Self>,
        connection: &mut SqliteConnection,
    ) -> Result<bool, sqlx::Error> {
        if refusal.ever.load(Ordering::SeqCst) {
            let pragma = if refusal.reason().is_some() {
                "PRAGMA query_only = ON"
            } else {
                "PRAGMA query_only = OFF"
            };
            sqlx::query(pragma).execute(connection).await?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StoreError;

    async fn query_only(connection: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("PRAGMA query_only")
            .fetch_one(connection)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_connection_handed_out_follows_the_refusal_new_ones_included() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.refuse_writes("the key file is gone".to_owned());
        // All four held at once: at least three are opened after the refusal.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut connection = store.pool.acquire().await.unwrap();
            assert_eq!(query_only(&mut connection).await, 1);
            held.push(connection);
        }
        drop(held);
        let refused = store.set_output_cursor("syslog", "a:1", 7, 1).await;
        assert!(
            matches!(refused, Err(StoreError::WritesRefused)),
            "{refused:?}"
        );
        assert!(matches!(
            store.write_transaction().await,
            Err(StoreError::WritesRefused)
        ));
        assert_eq!(
            store.writes_refused().as_deref(),
            Some("the key file is gone")
        );

        store.allow_writes();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut connection = store.pool.acquire().await.unwrap();
            assert_eq!(query_only(&mut connection).await, 0);
            held.push(connection);
        }
        drop(held);
        store
            .set_output_cursor("syslog", "a:1", 7, 1)
            .await
            .unwrap();
        assert_eq!(store.writes_refused(), None);
        store.close().await;
    }
}
