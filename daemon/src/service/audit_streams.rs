//! The audit log's streams: following new entries and exporting.
//!
//! Invariant: a watcher receives every matching entry after its starting
//! point exactly once and in order (it reads the store after each commit
//! instead of trusting a lossy broadcast); both streams run in their own task
//! that stops when the caller goes away, with bounded buffers.

use std::sync::Arc;

use occc_proto::v1::{AuditEntry, AuditExportLines};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{
    audit::{AuditError, checkpoint::CheckpointSigner, export::export_lines},
    clock::Clock,
    store::{AuditRow, Store},
    transport::uid_shares::Share,
};

/// Entries read per query while following.
const PAGE: u32 = 500;
/// Messages buffered for a slow reader before the task waits.
const BUFFER: usize = 16;
/// Export lines per message.
const LINES_PER_MESSAGE: usize = 256;

/// Which entries a watcher wants.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    /// Exact kind; empty for all.
    pub kind: String,
    /// Exact occcd user; empty for all.
    pub actor: String,
}

/// Follows the log from after entry `after`; `slot` is held until it ends.
pub fn follow(
    store: Store,
    mut head: watch::Receiver<i64>,
    after: i64,
    filter: WatchFilter,
    slot: Share,
) -> ReceiverStream<Result<AuditEntry, Status>> {
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let _slot = slot;
        let mut last = after;
        loop {
            // Mark the head seen before reading: a commit after the read wakes us.
            head.borrow_and_update();
            let rows = match store.audit_rows_after(last, PAGE).await {
                Ok(rows) => rows,
                Err(err) => {
                    let _ = sender.send(Err(AuditError::from(err).into())).await;
                    return;
                }
            };
            if rows.is_empty() {
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    () = sender.closed() => return,
                }
                continue;
            }
            for row in rows {
                last = row.sequence;
                let wanted = (filter.kind.is_empty() || row.kind == filter.kind)
                    && (filter.actor.is_empty()
                        || row.actor_user.as_deref() == Some(filter.actor.as_str()));
                if wanted && sender.send(Ok(audit_entry(row))).await.is_err() {
                    return;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Exports the log from entry `first_sequence` on, in batches of lines;
/// `slot` is held until it ends.
pub fn export(
    store: Store,
    signer: Arc<CheckpointSigner>,
    clock: Arc<dyn Clock>,
    first_sequence: u64,
    slot: Share,
) -> ReceiverStream<Result<AuditExportLines, Status>> {
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let _slot = slot;
        let (line_sender, mut line_receiver) = mpsc::channel::<String>(LINES_PER_MESSAGE);
        let producer = async move {
            export_lines(
                &store,
                &signer,
                clock.as_ref(),
                first_sequence,
                &line_sender,
            )
            .await
        };
        let batches = async {
            let mut batch = Vec::with_capacity(LINES_PER_MESSAGE);
            while line_receiver.recv_many(&mut batch, LINES_PER_MESSAGE).await > 0 {
                let lines = std::mem::replace(&mut batch, Vec::with_capacity(LINES_PER_MESSAGE));
                if sender.send(Ok(AuditExportLines { lines })).await.is_err() {
                    // The reader is gone: stop taking lines, which stops the producer.
                    line_receiver.close();
                    return;
                }
            }
        };
        let (produced, ()) = tokio::join!(producer, batches);
        if let Err(err) = produced {
            tracing::error!(error = %err, "audit export failed");
            let _ = sender.send(Err(err.into())).await;
        }
    });
    ReceiverStream::new(receiver)
}

/// `row` as the API's entry.
pub(super) fn audit_entry(row: AuditRow) -> AuditEntry {
    let id = |value: Option<i64>| value.and_then(|v| u32::try_from(v).ok());
    AuditEntry {
        sequence: u64::try_from(row.sequence).unwrap_or(0),
        at_unix_ms: row.at_unix_ms,
        kind: row.kind,
        actor_uid: id(row.actor_uid),
        actor_gid: id(row.actor_gid),
        actor_pid: id(row.actor_pid),
        actor: row.actor_user.unwrap_or_default(),
        detail_json: row.detail,
        prev_hash_hex: hex::encode(row.prev_hash),
        entry_hash_hex: hex::encode(row.entry_hash),
    }
}
