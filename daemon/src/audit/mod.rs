//! The hash-chained audit log.
//!
//! Invariant: entries are appended by one writer task, each linked by HMAC to
//! the one before; recording waits at most the configured timeout, so a
//! stalled disk can delay a call but never hang the daemon.

mod chain;
pub mod checkpoint;
mod error;
mod event;
pub mod export;
pub mod note;
mod offline;
mod read;
mod verify;
mod writer;

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

pub use chain::ChainHasher;
pub use error::AuditError;
pub use event::{
    AccountAction, Actor, AuditEvent, ConfigAction, IntegrityAction, SkillAction, bounded_rpc,
};
pub use offline::append_offline;
pub use read::{AuditPage, AuditQuery, list_entries};
pub use verify::{BrokenLink, ChainReport, verify_chain, verify_checkpoints};

use crate::{clock::Clock, store::Store};

/// Handle for recording entries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<writer::PendingEntry>,
    /// The sequence of the newest committed entry.
    head: watch::Receiver<i64>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

/// The writer task, to be closed once the daemon stops serving.
#[derive(Debug)]
pub struct AuditWriter {
    task: JoinHandle<()>,
    close: oneshot::Sender<()>,
    pulse: Arc<writer::WriterPulse>,
}

impl AuditWriter {
    /// Whether the writer task still runs, and since when the batch it is
    /// committing has waited (`None`: idle).
    #[must_use]
    pub fn pulse(&self) -> (bool, Option<crate::clock::UnixMillis>) {
        (!self.task.is_finished(), self.pulse.committing_since())
    }

    /// Since when batches fail to commit (`None`: the last one committed).
    #[must_use]
    pub fn failing_since(&self) -> Option<crate::clock::UnixMillis> {
        self.pulse.failing_since()
    }

    /// Stops taking entries, commits those already queued, and waits for the
    /// writer to end — even if some [`AuditLog`] handle is still alive.
    pub async fn finish(self) {
        let _ = self.close.send(());
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "audit writer ended abnormally");
        }
    }
}

impl AuditLog {
    /// Starts the writer on `store`, continuing the chain already there.
    pub async fn start(
        store: Store,
        hasher: Arc<ChainHasher>,
        clock: Arc<dyn Clock>,
        timeout: Duration,
        queue_capacity: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<(Self, AuditWriter), AuditError> {
        let head = writer::load_head(&store).await?;
        let (head_sender, head_receiver) = watch::channel(head.0);
        let (queue, receiver) = mpsc::channel(queue_capacity);
        let (close, close_requested) = oneshot::channel();
        let pulse = Arc::new(writer::WriterPulse::default());
        let task = tokio::spawn(writer::run_writer(
            store,
            hasher,
            head,
            head_sender,
            receiver,
            close_requested,
            writer::Watched {
                pulse: Arc::clone(&pulse),
                metrics,
            },
        ));
        Ok((
            Self {
                queue,
                head: head_receiver,
                clock,
                timeout,
            },
            AuditWriter { task, close, pulse },
        ))
    }

    /// Records `event` by `actor` and waits until it is committed, at most the
    /// configured timeout. Returns the entry's sequence number.
    pub async fn record(&self, actor: Actor, event: AuditEvent) -> Result<u64, AuditError> {
        let (committed, acknowledgement) = oneshot::channel();
        let pending = writer::PendingEntry {
            at: self.clock.now(),
            actor,
            event,
            committed,
        };
        let queued_and_committed = async {
            self.queue
                .send(pending)
                .await
                .map_err(|_| AuditError::WriterStopped)?;
            acknowledgement
                .await
                .map_err(|_| AuditError::WriterStopped)?
        };
        tokio::time::timeout(self.timeout, queued_and_committed)
            .await
            .map_err(|_| AuditError::Timeout(self.timeout))?
    }

    /// Entries queued and not yet taken by the writer.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Follows the sequence of the newest committed entry (it changes after
    /// each commit; readers then find the new entries in the store).
    #[must_use]
    pub fn committed_head(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }

    /// Like [`AuditLog::record`], but a failure is logged instead of returned:
    /// for callers whose own outcome must not depend on the audit disk.
    pub async fn record_or_log(&self, actor: Actor, event: AuditEvent) {
        let kind = event.kind();
        if let Err(err) = self.record(actor, event).await {
            tracing::error!(error = %err, kind, "audit entry lost");
        }
    }
}
