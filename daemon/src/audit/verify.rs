//! Walking the chain from the first entry to the last.
//!
//! Invariant: the first entry whose sequence, link or hash is wrong is
//! reported, then the first signed checkpoint that does not match the
//! entries (or covers entries that are gone); entries are read in pages so
//! memory stays bounded.

use occc_audit_format::{GENESIS_LINK, checkpoint_message, next_link};
use ring::signature::{ED25519, UnparsedPublicKey};

use super::{
    AuditError,
    chain::{ChainHasher, GENESIS_HASH},
    checkpoint::{entry_fields, stored_link},
};
use crate::store::Store;

const PAGE: u32 = 1_000;

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// Its sequence number.
    pub sequence: u64,
    /// Why.
    pub reason: String,
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked, up to and including a broken one.
    pub entries_checked: u64,
    /// `None` when every entry verifies.
    pub first_broken: Option<BrokenLink>,
}

/// Verifies every entry in `store` with `hasher`.
pub async fn verify_chain(store: &Store, hasher: &ChainHasher) -> Result<ChainReport, AuditError> {
    let mut expected_sequence = 1_i64;
    let mut prev_hash = GENESIS_HASH.to_vec();
    let mut checked = 0_u64;
    loop {
        let page = store.audit_rows_after(expected_sequence - 1, PAGE).await?;
        if page.is_empty() {
            return Ok(ChainReport {
                entries_checked: checked,
                first_broken: None,
            });
        }
        for row in page {
            checked += 1;
            let broken = |sequence: i64, reason: &str| ChainReport {
                entries_checked: checked,
                first_broken: Some(BrokenLink {
                    sequence: u64::try_from(sequence).unwrap_or(0),
                    reason: reason.to_owned(),
                }),
            };
            if row.sequence != expected_sequence {
                return Ok(broken(expected_sequence, "entry is missing from the chain"));
            }
            if row.prev_hash != prev_hash {
                return Ok(broken(row.sequence, "link to the previous entry is broken"));
            }
            if !hasher.verifies(&row) {
                return Ok(broken(
                    row.sequence,
                    "entry hash does not match its contents",
                ));
            }
            prev_hash = row.entry_hash;
            expected_sequence += 1;
        }
    }
}

/// Checks every stored checkpoint against the entries: its public link must
/// recompute and its signature verify under `public_key`, and no checkpoint
/// may cover an entry the log no longer holds (the newest were cut off).
/// Returns the first problem.
pub async fn verify_checkpoints(
    store: &Store,
    public_key: &[u8; 32],
) -> Result<Option<BrokenLink>, AuditError> {
    let verifier = UnparsedPublicKey::new(&ED25519, public_key);
    let mut link = GENESIS_LINK;
    let mut sequence = 0_i64;
    loop {
        let checkpoints = store.audit_checkpoints_after(sequence, PAGE).await?;
        let Some(last_in_page) = checkpoints.last().map(|row| row.sequence) else {
            return Ok(None);
        };
        let mut pending = checkpoints.iter().peekable();
        while sequence < last_in_page {
            let page = store.audit_rows_after(sequence, PAGE).await?;
            if page.is_empty() {
                return Ok(Some(BrokenLink {
                    sequence: u64::try_from(sequence + 1).unwrap_or(0),
                    reason: format!(
                        "the log ends at entry {sequence}, but a signed checkpoint covers entry {last_in_page}: the newest entries were removed"
                    ),
                }));
            }
            for row in page.iter().take_while(|row| row.sequence <= last_in_page) {
                if row.sequence != sequence + 1 {
                    // verify_chain names the gap; checkpoints cannot be checked past it.
                    return Ok(None);
                }
                link = next_link(&link, &entry_fields(row));
                sequence = row.sequence;
                if let Some(checkpoint) = pending.next_if(|c| c.sequence == sequence) {
                    let message = checkpoint_message(
                        u64::try_from(sequence).unwrap_or(0),
                        checkpoint.at_unix_ms,
                        &link,
                    );
                    let broken = |reason: &str| {
                        Some(BrokenLink {
                            sequence: u64::try_from(sequence).unwrap_or(0),
                            reason: reason.to_owned(),
                        })
                    };
                    if stored_link(checkpoint)? != link {
                        return Ok(broken(
                            "entries up to this one differ from what its signed checkpoint covers",
                        ));
                    }
                    if verifier.verify(&message, &checkpoint.signature).is_err() {
                        return Ok(broken(
                            "its checkpoint is not signed by this daemon's checkpoint key",
                        ));
                    }
                }
            }
        }
    }
}
