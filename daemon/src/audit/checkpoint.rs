//! Signed checkpoints of the chain head, for verifiers outside the daemon.
//!
//! Invariant: a checkpoint is signed only over a public link this module
//! computed from the stored entries, continuing the newest stored checkpoint
//! without a gap; one signer at a time (so two never race to sign), and the
//! signing key is derived from the master key and exists only in memory.

use std::sync::Arc;

use occc_audit_format::{
    CheckpointLine, EntryFields, EntryLine, GENESIS_LINK, Link, checkpoint_message, next_link,
};
use ring::signature::{Ed25519KeyPair, KeyPair};
use tokio::sync::Mutex;

use super::AuditError;
use crate::{
    clock::Clock,
    crypto::Subkey,
    store::{AuditRow, CheckpointRow, Store},
};

/// Entries read per query while linking.
const PAGE: u32 = 1_000;

/// occcd's Ed25519 checkpoint key.
pub struct CheckpointSigner {
    key_pair: Ed25519KeyPair,
    public_key: [u8; 32],
    /// Held while a checkpoint is computed and stored.
    signing: Mutex<()>,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &hex::encode(self.public_key))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// The signer whose seed is `subkey` (`KeyPurpose::AuditCheckpoints`).
    pub fn new(subkey: &Subkey) -> Result<Self, AuditError> {
        let key_pair = Ed25519KeyPair::from_seed_unchecked(subkey.expose())
            .map_err(|err| AuditError::Read(format!("checkpoint key: {err}")))?;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(key_pair.public_key().as_ref());
        Ok(Self {
            key_pair,
            public_key,
            signing: Mutex::new(()),
        })
    }

    /// The public key, 32 bytes.
    #[must_use]
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Signs `message`.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key_pair.sign(message).as_ref().to_vec()
    }
}

/// The fields of `row` the public link covers.
#[must_use]
pub fn entry_fields(row: &AuditRow) -> EntryFields<'_> {
    EntryFields {
        sequence: u64::try_from(row.sequence).unwrap_or(0),
        at_unix_ms: row.at_unix_ms,
        kind: &row.kind,
        actor: row.actor_user.as_deref().unwrap_or(""),
        actor_uid: id(row.actor_uid),
        actor_gid: id(row.actor_gid),
        actor_pid: id(row.actor_pid),
        detail_json: &row.detail,
    }
}

/// `row` as an export line.
#[must_use]
pub fn entry_line(row: &AuditRow) -> EntryLine {
    let fields = entry_fields(row);
    EntryLine {
        sequence: fields.sequence,
        at_unix_ms: fields.at_unix_ms,
        kind: fields.kind.to_owned(),
        actor: fields.actor.to_owned(),
        actor_uid: fields.actor_uid,
        actor_gid: fields.actor_gid,
        actor_pid: fields.actor_pid,
        detail_json: fields.detail_json.to_owned(),
        entry_hash_hex: hex::encode(&row.entry_hash),
    }
}

/// `row` as an export line.
#[must_use]
pub fn checkpoint_line(row: &CheckpointRow) -> CheckpointLine {
    CheckpointLine {
        sequence: u64::try_from(row.sequence).unwrap_or(0),
        at_unix_ms: row.at_unix_ms,
        link_hex: hex::encode(&row.link),
        signature_hex: hex::encode(&row.signature),
    }
}

fn id(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

/// A stored link as 32 bytes.
pub fn stored_link(row: &CheckpointRow) -> Result<Link, AuditError> {
    Link::try_from(row.link.as_slice()).map_err(|_| {
        AuditError::Read(format!(
            "checkpoint {} holds a link that is not 32 bytes",
            row.sequence
        ))
    })
}

/// Signs the current head unless the newest checkpoint already covers it;
/// returns the newest checkpoint (`None` while the log is empty).
pub async fn checkpoint_head(
    store: &Store,
    signer: &CheckpointSigner,
    clock: &dyn Clock,
) -> Result<Option<CheckpointRow>, AuditError> {
    let _one_at_a_time = signer.signing.lock().await;
    let newest = store.audit_checkpoint_at_or_before(i64::MAX).await?;
    let (mut sequence, mut link) = match &newest {
        Some(row) => (row.sequence, stored_link(row)?),
        None => (0, GENESIS_LINK),
    };
    let start = sequence;
    loop {
        let page = store.audit_rows_after(sequence, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.sequence != sequence + 1 {
                return Err(AuditError::Read(format!(
                    "entry {} is missing from the chain; not signing past it",
                    sequence + 1
                )));
            }
            link = next_link(&link, &entry_fields(row));
            sequence = row.sequence;
        }
    }
    if sequence == start {
        return Ok(newest);
    }
    let row = CheckpointRow {
        sequence,
        at_unix_ms: clock.now().0,
        link: link.to_vec(),
        signature: signer.sign(&checkpoint_message(
            u64::try_from(sequence).unwrap_or(0),
            &link,
        )),
    };
    store.add_audit_checkpoint(&row).await?;
    Ok(Some(row))
}

/// Signs the head every `interval` until aborted; failures are logged.
pub async fn sign_periodically(
    store: Store,
    signer: Arc<CheckpointSigner>,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = checkpoint_head(&store, &signer, clock.as_ref()).await {
            tracing::error!(error = %err, "audit checkpoint could not be signed");
        }
    }
}
