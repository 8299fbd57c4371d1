//! Walking the chain from the first entry to the last.
//!
//! Invariant: the first entry whose sequence, link or hash is wrong is
//! reported; entries are read in pages so memory stays bounded.

use super::{AuditError, chain::ChainHasher, chain::GENESIS_HASH};
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
