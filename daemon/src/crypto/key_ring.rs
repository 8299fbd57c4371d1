//! The keys one store is used with: the master key, which can be rotated,
//! and the data root it wraps, which cannot.
//!
//! Invariant: what must change when the master key changes — the database
//! encryption and the sealing of stored secrets — is derived from the
//! master key; what must outlive a rotation — the audit chain's HMAC and
//! checkpoint signing key (outside verifiers pin its public key), the HMACs
//! of recovery codes and tokens (nobody can recompute them from the
//! plaintext), snapshot and config-version names — is derived from the data
//! root. A store that was never rotated has no wrapped root: its root is its
//! master key, so every key derived before rotation existed stays the same.
//! A wrapped root opens only under the master key it was sealed with.

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

/// The master key and the data root of one store. `Debug` shows no key
/// material.
#[derive(Debug)]
pub struct KeyRing {
    master: MasterKey,
    root: MasterKey,
}

impl KeyRing {
    /// The ring of a store that was never rotated: its root is `master`.
    #[must_use]
    pub fn unrotated(master: MasterKey) -> Self {
        let root = MasterKey::from_bytes(Zeroizing::new(*master.bytes()));
        Self { master, root }
    }

    /// The ring of raw key bytes, root equal to master (tests, tools).
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
        let mut root = Zeroizing::new([0_u8; 32]);
        if opened.len() != root.len() {
            return Err(SealError::Rejected);
        }
        root.copy_from_slice(&opened);
        Ok(Self {
            master,
            root: MasterKey::from_bytes(root),
        })
    }

    /// This ring's root under `new_master`, and the root wrapped for the
    /// store (to be written in the same transaction as the re-sealed values).
    pub fn rotated_to(&self, new_master: MasterKey) -> Result<(Self, Vec<u8>), SealError> {
        let sealer = Sealer::new(&new_master.derive(KeyPurpose::Sealing))?;
        let wrapped = sealer.seal(&ROOT_CONTEXT, self.root.bytes())?;
        let root = MasterKey::from_bytes(Zeroizing::new(*self.root.bytes()));
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
        match purpose {
            KeyPurpose::Database | KeyPurpose::Sealing => self.master.derive(purpose),
            KeyPurpose::AuditChain
            | KeyPurpose::RecoveryCodes
            | KeyPurpose::Tokens
            | KeyPurpose::Snapshots
            | KeyPurpose::ConfigVersions
            | KeyPurpose::AuditCheckpoints => self.root.derive(purpose),
        }
    }

    /// The master key.
    #[must_use]
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::from_bytes(Zeroizing::new([byte; 32]))
    }

    #[test]
    fn an_unrotated_ring_derives_what_its_master_key_always_did() {
        let master = MasterKey::from_bytes(Zeroizing::new([3; 32]));
        let ring = ring(3);
        for purpose in [
            KeyPurpose::Database,
            KeyPurpose::AuditChain,
            KeyPurpose::Tokens,
        ] {
            assert_eq!(
                ring.derive(purpose).expose(),
                master.derive(purpose).expose()
            );
        }
    }

    #[test]
    fn rotation_changes_encryption_keys_and_keeps_the_rest() {
        let old = ring(1);
        let (new, wrapped) = old
            .rotated_to(MasterKey::from_bytes(Zeroizing::new([2; 32])))
            .unwrap();
        for purpose in [KeyPurpose::Database, KeyPurpose::Sealing] {
            assert_ne!(old.derive(purpose).expose(), new.derive(purpose).expose());
        }
        for purpose in [
            KeyPurpose::AuditChain,
            KeyPurpose::RecoveryCodes,
            KeyPurpose::Tokens,
            KeyPurpose::Snapshots,
            KeyPurpose::ConfigVersions,
            KeyPurpose::AuditCheckpoints,
        ] {
            assert_eq!(old.derive(purpose).expose(), new.derive(purpose).expose());
        }
        // The wrapped root opens under the new master key only.
        let reopened = KeyRing::open(
            MasterKey::from_bytes(Zeroizing::new([2; 32])),
            Some(&wrapped),
        )
        .unwrap();
        assert_eq!(
            reopened.derive(KeyPurpose::Tokens).expose(),
            old.derive(KeyPurpose::Tokens).expose()
        );
        let under_old = KeyRing::open(
            MasterKey::from_bytes(Zeroizing::new([1; 32])),
            Some(&wrapped),
        );
        assert_eq!(under_old.err(), Some(SealError::Rejected));
        // A second rotation keeps the same root.
        let (again, _) = new
            .rotated_to(MasterKey::from_bytes(Zeroizing::new([4; 32])))
            .unwrap();
        assert_eq!(
            again.derive(KeyPurpose::AuditCheckpoints).expose(),
            old.derive(KeyPurpose::AuditCheckpoints).expose()
        );
    }
}
