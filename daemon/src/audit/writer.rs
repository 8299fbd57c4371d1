//! The single audit writer: a task that owns the chain's head and commits
//! queued entries in batches (group commit).
//!
//! Invariant: only this task appends, so sequence numbers are gapless and each
//! entry links to the one committed before it; an entry is acknowledged only
//! after the transaction holding it committed.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use tokio::sync::{mpsc, oneshot, watch};

use super::{Actor, AuditError, AuditEvent, chain::ChainHasher, chain::GENESIS_HASH};
use crate::{
    clock::UnixMillis,
    store::{AuditRow, Store, StoreError},
};

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 256;

/// An entry waiting for the writer, with the channel its caller waits on.
#[derive(Debug)]
pub(super) struct PendingEntry {
    pub(super) at: UnixMillis,
    pub(super) actor: Actor,
    pub(super) event: AuditEvent,
    pub(super) committed: oneshot::Sender<Result<u64, AuditError>>,
}

/// Position of the newest committed entry.
#[derive(Debug, Clone)]
struct ChainHead {
    sequence: i64,
    hash: Vec<u8>,
}

/// Reads the current head from the store.
pub(super) async fn load_head(store: &Store) -> Result<(i64, Vec<u8>), AuditError> {
    Ok(match store.last_audit_row().await? {
        Some(row) => (row.sequence, row.entry_hash),
        None => (0, GENESIS_HASH.to_vec()),
    })
}

/// What the writer is doing, for the service watchdog and health: the
/// queue time of the oldest entry of the batch being committed (0 while it
/// waits), and since when batches fail to commit (0 once one commits).
/// Only the writer sets either.
#[derive(Debug, Default)]
pub struct WriterPulse(AtomicI64, AtomicI64);

impl WriterPulse {
    /// Since when the batch being committed has waited (`None`: idle).
    #[must_use]
    pub fn committing_since(&self) -> Option<UnixMillis> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            at => Some(UnixMillis(at)),
        }
    }

    /// Since when batches fail to commit: the queue time of the oldest
    /// entry of the first batch that failed (`None`: the last one committed).
    #[must_use]
    pub fn failing_since(&self) -> Option<UnixMillis> {
        match self.1.load(Ordering::Relaxed) {
            0 => None,
            at => Some(UnixMillis(at)),
        }
    }
}

/// What others read of the writer: its pulse (watchdog, health) and its
/// counts (metrics).
#[derive(Debug)]
pub(super) struct Watched {
    /// See [`WriterPulse`].
    pub pulse: Arc<WriterPulse>,
    /// Entries committed and lost, commit latency.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Runs until `close` fires (or every sender is gone) and the entries queued
/// by then are committed. Senders still alive after `close` get
/// [`AuditError::WriterStopped`].
pub(super) async fn run_writer(
    store: Store,
    hasher: Arc<ChainHasher>,
    head: (i64, Vec<u8>),
    committed_head: watch::Sender<i64>,
    mut queue: mpsc::Receiver<PendingEntry>,
    mut close: oneshot::Receiver<()>,
    watched: Watched,
) {
    let Watched { pulse, metrics } = watched;
    let mut head = ChainHead {
        sequence: head.0,
        hash: head.1,
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = &mut close, if !closing => {
                closing = true;
                queue.close();
                continue;
            }
            received = queue.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
            }
        }
        let oldest = batch.iter().map(|entry| entry.at.0).min().unwrap_or(0);
        pulse.0.store(oldest.max(1), Ordering::Relaxed);
        let rows = link(&hasher, &head, &batch);
        let started = std::time::Instant::now();
        let appended = store.append_audit_rows(&rows).await;
        metrics.audit_commit(started.elapsed());
        pulse.0.store(0, Ordering::Relaxed);
        match &appended {
            Ok(()) => pulse.1.store(0, Ordering::Relaxed),
            Err(_) => {
                // The first failure of a run is kept: the gap starts there.
                let _ = pulse.1.compare_exchange(
                    0,
                    oldest.max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        match appended {
            Ok(()) => {
                if let Some(last) = rows.last() {
                    head = ChainHead {
                        sequence: last.sequence,
                        hash: last.entry_hash.clone(),
                    };
                    committed_head.send_replace(last.sequence);
                }
                metrics.audit_committed(batch.iter().map(|pending| pending.event.kind()));
                for (pending, row) in batch.drain(..).zip(&rows) {
                    let _ = pending
                        .committed
                        .send(Ok(u64::try_from(row.sequence).unwrap_or(0)));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, entries = batch.len(), "audit entries could not be committed");
                metrics.audit_lost(batch.len() as u64);
                let refused = matches!(
                    err,
                    StoreError::Full | StoreError::WritesRefused | StoreError::Io(_)
                );
                for pending in batch.drain(..) {
                    let why = if refused {
                        AuditError::NotTaken(err.to_string())
                    } else {
                        AuditError::Commit(err.to_string())
                    };
                    let _ = pending.committed.send(Err(why));
                }
            }
        }
    }
}

fn link(hasher: &ChainHasher, head: &ChainHead, batch: &[PendingEntry]) -> Vec<AuditRow> {
    let mut prev_hash = head.hash.clone();
    let mut rows = Vec::with_capacity(batch.len());
    for (offset, pending) in (1_i64..).zip(batch) {
        let peer = pending.actor.peer.as_ref();
        let mut row = AuditRow {
            sequence: head.sequence + offset,
            at_unix_ms: pending.at.0,
            kind: pending.event.kind().to_owned(),
            actor_uid: peer.map(|p| i64::from(p.uid)),
            actor_gid: peer.map(|p| i64::from(p.gid)),
            actor_pid: peer.and_then(|p| p.pid).map(i64::from),
            actor_user: pending.actor.user.clone(),
            detail: pending.event.detail_json(),
            prev_hash,
            entry_hash: Vec::new(),
        };
        row.entry_hash = hasher.entry_hash(&row);
        prev_hash = row.entry_hash.clone();
        rows.push(row);
    }
    rows
}
