//! The keys one store is used with: the master key, which can be rotated,
//! and the data root it wraps, which cannot.
//!
//! Invariant: what must change when the master key changes — the database
//! encryption and the sealing of stored secrets — is derived from the
//! master key; what must outlive a rotation — the audit chain's HMAC and
//! checkpoint signing key (outside verifiers pin its public key), the HMACs
//! of recovery codes and tokens (nobody can recompute them from the
//! plaintext), snapshot and config-version names — is the data root: those
//! six keys themselves. A store never rotated has no wrapped root: the six
//! are derived from its master key, as they always were. A rotation wraps
//! the six keys (never a master key, whose database and sealing keys must
//! not be recoverable from the new one) under the new master key; a
//! wrapped root opens only under the master key it was sealed with.

use zeroize::Zeroizing;

use super::{
    seal::{SealContext, SealError, Sealer},
    subkeys::{KeyPurpose, MasterKey, Subkey},
};

/// Where the wrapped data root is sealed (one row, `data_root_key`).
const ROOT_CONTEXT: SealContext<'static> = SealContext {
    table: "data_root_key",
    column: "sealed",
    row: "1",
};

/// The purposes the data root serves, in their wrapped order.
const ROOT_PURPOSES: [KeyPurpose; 6] = [
    KeyPurpose::AuditChain,
    KeyPurpose::RecoveryCodes,
    KeyPurpose::Tokens,
    KeyPurpose::Snapshots,
    KeyPurpose::ConfigVersions,
    KeyPurpose::AuditCheckpoints,
];

/// Bytes of a wrapped root's plaintext.
const ROOT_BYTES: usize = 32 * ROOT_PURPOSES.len();

/// The master key and the data root of one store. `Debug` shows no key
/// material.
#[derive(Debug)]
pub struct KeyRing {
    master: MasterKey,
    /// The keys of [`ROOT_PURPOSES`], in that order.
    root: [Subkey; 6],
}

impl KeyRing {
    /// The ring of a store that was never rotated: its root is derived
    /// from `master`.
    #[must_use]
    pub fn unrotated(master: MasterKey) -> Self {
        let root = ROOT_PURPOSES.map(|purpose| master.derive(purpose));
        Self { master, root }
    }

    /// The ring of raw key bytes, never rotated (tests, tools).
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self::unrotated(MasterKey::from_bytes(bytes))
    }

    /// The ring of `master` and the root `wrapped` under it, if the store
    /// holds one (`None`: never rotated).
    pub fn open(master: MasterKey, wrapped: Option<&[u8]>) -> Result<Self, SealError> {
        let Some(wrapped) = wrapped else {
            return Ok(Self::unrotated(master));
        };
        let sealer = Sealer::new(&master.derive(KeyPurpose::Sealing))?;
        let opened = sealer.open(&ROOT_CONTEXT, wrapped)?;
        if opened.len() != ROOT_BYTES {
            return Err(SealError::Rejected);
        }
        let mut keys = opened.chunks_exact(32);
        let root = ROOT_PURPOSES.map(|_| {
            let mut key = Zeroizing::new([0_u8; 32]);
            if let Some(bytes) = keys.next() {
                key.copy_from_slice(bytes);
            }
            Subkey::from_bytes(key)
        });
        Ok(Self { master, root })
    }

    /// This ring's root under `new_master`, and the root wrapped for the
    /// store (to be written in the same transaction as the re-sealed values).
    pub fn rotated_to(&self, new_master: MasterKey) -> Result<(Self, Vec<u8>), SealError> {
        let sealer = Sealer::new(&new_master.derive(KeyPurpose::Sealing))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(ROOT_BYTES));
        for key in &self.root {
            plain.extend_from_slice(key.expose());
        }
        let wrapped = sealer.seal(&ROOT_CONTEXT, &plain)?;
        let root = self.root.each_ref().map(Subkey::duplicate);
        Ok((
            Self {
                master: new_master,
                root,
            },
            wrapped,
        ))
    }

    /// The key for `purpose`, from the master key or the data root (see the
    /// module's invariant).
    #[must_use]
    pub fn derive(&self, purpose: KeyPurpose) -> Subkey {
        match ROOT_PURPOSES.iter().position(|root| *root == purpose) {
            Some(index) => self.root[index].duplicate(),
            None => self.master.derive(purpose),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::from_bytes(Zeroizing::new([byte; 32]))
    }

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(Zeroizing::new([byte; 32]))
    }

    #[test]
    fn an_unrotated_ring_derives_what_its_master_key_always_did() {
        let ring = ring(3);
        for purpose in [
            KeyPurpose::Database,
            KeyPurpose::AuditChain,
            KeyPurpose::Tokens,
        ] {
            assert_eq!(
                ring.derive(purpose).expose(),
                master(3).derive(purpose).expose()
            );
        }
    }

    #[test]
    fn rotation_changes_encryption_keys_and_keeps_the_rest() {
        let old = ring(1);
        let (new, wrapped) = old.rotated_to(master(2)).unwrap();
        for purpose in [KeyPurpose::Database, KeyPurpose::Sealing] {
            assert_ne!(old.derive(purpose).expose(), new.derive(purpose).expose());
        }
        for purpose in ROOT_PURPOSES {
            assert_eq!(old.derive(purpose).expose(), new.derive(purpose).expose());
        }
        // The wrapped root opens under the new master key only.
        let reopened = KeyRing::open(master(2), Some(&wrapped)).unwrap();
        assert_eq!(
            reopened.derive(KeyPurpose::Tokens).expose(),
            old.derive(KeyPurpose::Tokens).expose()
        );
        let under_old = KeyRing::open(master(1), Some(&wrapped));
        assert_eq!(under_old.err(), Some(SealError::Rejected));
        // A second rotation keeps the same root.
        let (again, _) = new.rotated_to(master(4)).unwrap();
        assert_eq!(
            again.derive(KeyPurpose::AuditCheckpoints).expose(),
            old.derive(KeyPurpose::AuditCheckpoints).expose()
        );
    }

    #[test]
    fn the_wrapped_root_never_holds_the_old_master_key_or_its_encryption_keys() {
        let old = ring(1);
        let (_, wrapped) = old.rotated_to(master(2)).unwrap();
        let sealer = Sealer::new(&master(2).derive(KeyPurpose::Sealing)).unwrap();
        let plain = sealer.open(&ROOT_CONTEXT, &wrapped).unwrap();
        assert_eq!(plain.len(), ROOT_BYTES);
        for secret in [
            [1_u8; 32],
            *master(1).derive(KeyPurpose::Database).expose(),
            *master(1).derive(KeyPurpose::Sealing).expose(),
        ] {
            assert!(!plain.windows(32).any(|window| window == secret));
        }
    }
}
