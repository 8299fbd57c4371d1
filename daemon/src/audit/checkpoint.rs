//! Signed checkpoints of the chain head, for verifiers outside the daemon.
//!
//! Invariant: a checkpoint is signed only over a public link this module
//! computed from stored entries whose HMAC links verify, continuing the newest
//! stored checkpoint — itself checked against this key — without a gap; so
//! someone who rewrites rows or checkpoints in the database cannot get their
//! version signed. One signer at a time (two never race to sign); the signing
//! key is derived from the data root (it outlives a master key rotation,
//! see `crypto::KeyRing`) and exists only in memory.

use std::sync::Arc;

use occc_audit_format::{
    CheckpointLine, EntryFields, EntryLine, GENESIS_LINK, Link, checkpoint_message, next_link,
};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use tokio::sync::Mutex;

use super::{
    AuditError,
    chain::{ChainHasher, GENESIS_HASH},
};
use crate::{
    clock::Clock,
    crypto::{KeyPurpose, KeyRing, Subkey},
    store::{AuditRow, CheckpointRow, Store},
};

/// Entries read per query while linking.
const PAGE: u32 = 1_000;

/// occcd's Ed25519 checkpoint key.
pub struct CheckpointSigner {
    key_pair: Ed25519KeyPair,
    public_key: [u8; 32],
    /// Checks the daemon's own links of every entry before it is signed over.
    hasher: Arc<ChainHasher>,
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
    /// The chain hasher and the checkpoint signer of `keys`.
    pub fn of_keys(keys: &KeyRing) -> Result<(Arc<ChainHasher>, Self), AuditError> {
        let hasher = Arc::new(ChainHasher::new(&keys.derive(KeyPurpose::AuditChain)));
        let signer = Self::new(
            &keys.derive(KeyPurpose::AuditCheckpoints),
            Arc::clone(&hasher),
        )?;
        Ok((hasher, signer))
    }

    /// The signer whose seed is `subkey` (`KeyPurpose::AuditCheckpoints`),
    /// checking entries with `hasher`.
    pub fn new(subkey: &Subkey, hasher: Arc<ChainHasher>) -> Result<Self, AuditError> {
        let key_pair = Ed25519KeyPair::from_seed_unchecked(subkey.expose())
            .map_err(|err| AuditError::Read(format!("checkpoint key: {err}")))?;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(key_pair.public_key().as_ref());
        Ok(Self {
            key_pair,
            public_key,
            hasher,
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

    /// True when `row` carries this key's signature over its contents.
    #[must_use]
    pub fn signed(&self, row: &CheckpointRow) -> bool {
        let (Ok(sequence), Ok(link)) = (
            u64::try_from(row.sequence),
            Link::try_from(row.link.as_slice()),
        ) else {
            return false;
        };
        let message = checkpoint_message(sequence, row.at_unix_ms, &link);
        UnparsedPublicKey::new(&ED25519, self.public_key)
            .verify(&message, &row.signature)
            .is_ok()
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
        Some(row) if !signer.signed(row) => {
            return Err(refuse(format!(
                "the stored checkpoint of entry {} is not signed by this daemon's key",
                row.sequence
            )));
        }
        Some(row) => (row.sequence, stored_link(row)?),
        None => (0, GENESIS_LINK),
    };
    let start = sequence;
    let mut prev_hash = match sequence {
        0 => GENESIS_HASH.to_vec(),
        _ => store
            .audit_rows_after(sequence - 1, 1)
            .await?
            .into_iter()
            .find(|row| row.sequence == start)
            .map(|row| row.entry_hash)
            .ok_or_else(|| {
                refuse(format!(
                    "entry {start}, which the newest checkpoint covers, is gone"
                ))
            })?,
    };
    loop {
        let page = store.audit_rows_after(sequence, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.sequence != sequence + 1 {
                return Err(refuse(format!(
                    "entry {} is missing from the chain",
                    sequence + 1
                )));
            }
            if row.prev_hash != prev_hash || !signer.hasher.verifies(row) {
                return Err(refuse(format!(
                    "entry {} does not verify against the chain",
                    row.sequence
                )));
            }
            link = next_link(&link, &entry_fields(row));
            sequence = row.sequence;
            prev_hash.clone_from(&row.entry_hash);
        }
    }
    if sequence == start {
        return Ok(newest);
    }
    let at_unix_ms = clock.now().0;
    let row = CheckpointRow {
        sequence,
        at_unix_ms,
        link: link.to_vec(),
        signature: signer.sign(&checkpoint_message(
            u64::try_from(sequence).unwrap_or(0),
            at_unix_ms,
            &link,
        )),
    };
    store.add_audit_checkpoint(&row).await?;
    Ok(Some(row))
}

fn refuse(reason: String) -> AuditError {
    AuditError::Read(format!(
        "not signing a checkpoint: {reason}; run `occcd audit verify`"
    ))
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
