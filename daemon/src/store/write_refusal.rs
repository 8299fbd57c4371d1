//! Whether the store takes changes. When occcd must not change its store —
//! the master key's file is gone or holds another key, so what it wrote
//! now could be lost with the next start — every connection is switched to
//! `PRAGMA query_only` as the pool hands it out: writes fail with
//! SQLITE_READONLY ([`super::StoreError::WritesRefused`]), reads go on.
//!
//! Invariant: once refused, no connection is handed out without the pragma
//! matching the current state (a write already running on a connection
//! finishes); a store never refused pays nothing for this.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, Ordering},
};

use sqlx::{SqliteConnection, pool::PoolConnectionMetadata};

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

    /// The pool's `before_acquire` hook: sets `query_only` to the current
    /// state on `connection` (after the first refusal only).
    pub(super) async fn apply(
        refusal: Arc<Self>,
        connection: &mut SqliteConnection,
        _meta: PoolConnectionMetadata,
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
