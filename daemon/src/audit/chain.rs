//! The audit chain's link: HMAC-SHA256 over an entry's canonical encoding,
//! which includes the previous entry's hash.
//!
//! Invariant: the encoding is unambiguous (every field length-prefixed, every
//! optional field tagged), so two different entries never hash alike, and
//! changing any stored field of any entry breaks its link.

use ring::hmac;

use crate::{crypto::Subkey, store::AuditRow};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

const DOMAIN: &[u8] = b"occcd-audit-v1";

/// Computes and checks entry hashes with the audit subkey.
#[derive(Debug)]
pub struct ChainHasher {
    key: hmac::Key,
}

impl ChainHasher {
    /// A hasher keyed with the [`crate::crypto::KeyPurpose::AuditChain`] subkey.
    #[must_use]
    pub fn new(subkey: &Subkey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, subkey.expose()),
        }
    }

    /// The hash `row` must carry, computed from all its other fields.
    #[must_use]
    pub fn entry_hash(&self, row: &AuditRow) -> Vec<u8> {
        hmac::sign(&self.key, &canonical_bytes(row))
            .as_ref()
            .to_vec()
    }

    /// Whether `row.entry_hash` matches its contents (constant time).
    #[must_use]
    pub fn verifies(&self, row: &AuditRow) -> bool {
        hmac::verify(&self.key, &canonical_bytes(row), &row.entry_hash).is_ok()
    }
}

fn canonical_bytes(row: &AuditRow) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + row.detail.len());
    put_bytes(&mut out, DOMAIN);
    out.extend_from_slice(&row.sequence.to_be_bytes());
    out.extend_from_slice(&row.at_unix_ms.to_be_bytes());
    put_bytes(&mut out, row.kind.as_bytes());
    for id in [row.actor_uid, row.actor_gid, row.actor_pid] {
        put_optional(
            &mut out,
            id.map(i64::to_be_bytes).as_ref().map(|b| b.as_slice()),
        );
    }
    put_optional(&mut out, row.actor_user.as_deref().map(str::as_bytes));
    put_bytes(&mut out, row.detail.as_bytes());
    put_bytes(&mut out, &row.prev_hash);
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
        None => out.push(0),
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::crypto::{KeyPurpose, KeyRing};

    fn hasher(byte: u8) -> ChainHasher {
        ChainHasher::new(
            &KeyRing::from_bytes(Zeroizing::new([byte; 32])).derive(KeyPurpose::AuditChain),
        )
    }

    fn row() -> AuditRow {
        AuditRow {
            sequence: 1,
            at_unix_ms: 1_700_000_000_000,
            kind: "call_refused".into(),
            actor_uid: Some(1000),
            actor_gid: Some(1000),
            actor_pid: Some(42),
            actor_user: None,
            detail: r#"{"rpc":"/occc.v1.Audit/VerifyChain"}"#.into(),
            prev_hash: GENESIS_HASH.to_vec(),
            entry_hash: Vec::new(),
        }
    }

    #[test]
    fn every_field_is_covered() {
        let hasher = hasher(3);
        let mut original = row();
        original.entry_hash = hasher.entry_hash(&original);
        assert!(hasher.verifies(&original));
        type Edit = Box<dyn Fn(&mut AuditRow)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.sequence += 1),
            Box::new(|r| r.at_unix_ms += 1),
            Box::new(|r| r.kind.push('x')),
            Box::new(|r| r.actor_uid = Some(0)),
            Box::new(|r| r.actor_gid = None),
            Box::new(|r| r.actor_pid = Some(43)),
            Box::new(|r| r.actor_user = Some("root".into())),
            Box::new(|r| r.detail.push(' ')),
            Box::new(|r| r.prev_hash[0] = 1),
        ];
        for edit in edits {
            let mut changed = original.clone();
            edit(&mut changed);
            assert!(
                !hasher.verifies(&changed),
                "edit went unnoticed: {changed:?}"
            );
        }
    }

    #[test]
    fn another_key_does_not_verify() {
        let mut entry = row();
        entry.entry_hash = hasher(3).entry_hash(&entry);
        assert!(!hasher(4).verifies(&entry));
    }

    #[test]
    fn absent_and_empty_user_differ() {
        let hasher = hasher(3);
        let absent = row();
        let empty = AuditRow {
            actor_user: Some(String::new()),
            ..row()
        };
        assert_ne!(hasher.entry_hash(&absent), hasher.entry_hash(&empty));
    }
}
