//! Exporting the log as JSON Lines an outsider can verify
//! (format: the `occc-audit-format` crate; docs/audit.md).
//!
//! Invariant: an export covers exactly the entries from its anchor (the
//! newest checkpoint before the first entry asked for, or the beginning) up
//! to a checkpoint signed for the export, in order, with every stored
//! checkpoint between them; lines are produced page by page, so memory stays
//! bounded whatever the log's size, and a reader that goes away stops it.

use std::collections::VecDeque;

use occc_audit_format::{CheckpointLine, ExportLine, FORMAT, GENESIS_LINK, Link, header_message};
use tokio::sync::mpsc;

use super::{
    AuditError,
    checkpoint::{CheckpointSigner, checkpoint_head, checkpoint_line, entry_line},
};
use crate::{
    clock::Clock,
    store::{CheckpointRow, Store},
};

/// Entries (and checkpoints) read per query.
const PAGE: u32 = 500;

/// Writes the export of entries from `first_sequence` on (0 or 1: all) to
/// `lines`, one JSON object per string. Returns the last entry exported.
pub async fn export_lines(
    store: &Store,
    signer: &CheckpointSigner,
    clock: &dyn Clock,
    first_sequence: u64,
    lines: &mpsc::Sender<String>,
) -> Result<u64, AuditError> {
    let last = checkpoint_head(store, signer, clock).await?;
    let last_sequence = last.as_ref().map_or(0, |row| row.sequence);
    let exported_at = clock.now().0;
    let last_u64 = u64::try_from(last_sequence).unwrap_or(0);
    // The anchor: the newest checkpoint before the first entry asked for, never
    // past the export's end (a checkpoint signed meanwhile must not overtake it).
    let wanted_first = i64::try_from(first_sequence).unwrap_or(i64::MAX);
    let anchor_at = wanted_first.saturating_sub(1).min(last_sequence);
    let anchor = match store.audit_checkpoint_at_or_before(anchor_at).await? {
        Some(row) if wanted_first > 1 => checkpoint_line(&row),
        _ => CheckpointLine {
            sequence: 0,
            at_unix_ms: 0,
            link_hex: hex::encode(GENESIS_LINK),
            signature_hex: String::new(),
        },
    };
    let anchor_link = match &anchor.link_hex {
        text if anchor.sequence == 0 || text.is_empty() => GENESIS_LINK,
        text => hex::decode(text)
            .ok()
            .and_then(|bytes| Link::try_from(bytes).ok())
            .ok_or_else(|| AuditError::Read("a stored checkpoint link is not 32 bytes".into()))?,
    };
    let header = ExportLine::Header {
        format: FORMAT.to_owned(),
        public_key_hex: hex::encode(signer.public_key()),
        exported_at_unix_ms: exported_at,
        last_sequence: last_u64,
        signature_hex: hex::encode(signer.sign(&header_message(
            exported_at,
            anchor.sequence,
            &anchor_link,
            last_u64,
        ))),
    };
    let mut sequence = i64::try_from(anchor.sequence).unwrap_or(0);
    if !send(lines, &header).await? || !send(lines, &ExportLine::Anchor(anchor)).await? {
        return Ok(0);
    }
    let mut upcoming = Checkpoints::after(store, sequence).await?;
    while sequence < last_sequence {
        let page = store.audit_rows_after(sequence, PAGE).await?;
        if page.is_empty() {
            return Err(AuditError::Read(format!(
                "the log ends at entry {sequence} but was signed up to {last_sequence}: entries were removed"
            )));
        }
        for row in page.iter().take_while(|row| row.sequence <= last_sequence) {
            if !send(lines, &ExportLine::Entry(entry_line(row))).await? {
                return Ok(0);
            }
            sequence = row.sequence;
            if let Some(checkpoint) = upcoming.take(store, sequence).await?
                && !send(lines, &ExportLine::Checkpoint(checkpoint_line(&checkpoint))).await?
            {
                return Ok(0);
            }
        }
    }
    Ok(last_u64)
}

/// Stored checkpoints ahead of the export, read a page at a time.
struct Checkpoints {
    rows: VecDeque<CheckpointRow>,
    more: bool,
}

impl Checkpoints {
    async fn after(store: &Store, sequence: i64) -> Result<Self, AuditError> {
        let rows: VecDeque<_> = store.audit_checkpoints_after(sequence, PAGE).await?.into();
        let more = rows.len() == PAGE as usize;
        Ok(Self { rows, more })
    }

    /// The checkpoint of entry `sequence`, if one is stored.
    async fn take(
        &mut self,
        store: &Store,
        sequence: i64,
    ) -> Result<Option<CheckpointRow>, AuditError> {
        if self.rows.is_empty() && self.more {
            *self = Self::after(store, sequence - 1).await?;
        }
        if self
            .rows
            .front()
            .is_some_and(|row| row.sequence == sequence)
        {
            return Ok(self.rows.pop_front());
        }
        Ok(None)
    }
}

/// Sends one line; `false` when the reader has gone.
async fn send(lines: &mpsc::Sender<String>, line: &ExportLine) -> Result<bool, AuditError> {
    let text = serde_json::to_string(line)
        .map_err(|err| AuditError::Read(format!("export line: {err}")))?;
    Ok(lines.send(text).await.is_ok())
}
