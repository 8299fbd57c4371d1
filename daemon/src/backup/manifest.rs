//! The manifest of a backup: what it holds, its checksum, and a signature
//! by the key of the store it came from.
//!
//! Invariant: a manifest verifies only if it was signed with the audit
//! checkpoint key of the master key in use (so a backup from another
//! installation, or an altered manifest, is refused) and names this format.

use serde::{Deserialize, Serialize};

use crate::audit::checkpoint::CheckpointSigner;

/// The format a manifest names.
pub const FORMAT: &str = "occcd-backup/1";
/// Longest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The occcd that made it.
    pub occcd_version: String,
    /// When, in ms since the epoch.
    pub created_at_unix_ms: i64,
    /// The last audit entry in the copy.
    pub audit_head: i64,
    /// Size of the database file.
    pub database_bytes: u64,
    /// SHA-256 of the database file (hex).
    pub database_sha256: String,
    /// The store's data root wrapped under the master key of its time
    /// (hex; absent: never rotated), so a restore knows the audit keys
    /// before it opens anything (see `crypto::KeyRing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_root_wrapped_hex: Option<String>,
    /// The Ed25519 key that signed it: the audit checkpoint key (hex).
    pub public_key_hex: String,
    /// Signature over the manifest with this field empty (hex).
    pub signature_hex: String,
}

impl Manifest {
    /// The bytes the signature covers: a context no checkpoint or export
    /// signature starts with, then the manifest without its signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature_hex.clear();
        let mut bytes = b"occcd-backup-manifest/1\0".to_vec();
        bytes.extend(serde_json::to_vec(&unsigned).unwrap_or_default());
        bytes
    }

    /// Signs it with `signer` (setting the key and signature fields).
    pub fn sign(&mut self, signer: &CheckpointSigner) {
        self.public_key_hex = hex::encode(signer.public_key());
        self.signature_hex = hex::encode(signer.sign(&self.signed_bytes()));
    }

    /// Why it cannot be trusted by the holder of `signer`, if it cannot.
    pub fn verify(&self, signer: &CheckpointSigner) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {:?}, this occcd reads {FORMAT}",
                self.format
            ));
        }
        let ours = hex::encode(signer.public_key());
        if self.public_key_hex != ours {
            return Err(format!(
                "made under another master key, or before a rotation (its audit key {}, the \
                 one this key gives {ours}): restore it with the key in use when it was made",
                self.public_key_hex
            ));
        }
        let signature = hex::decode(&self.signature_hex).map_err(|_| "the signature is not hex")?;
        let public =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, signer.public_key());
        public
            .verify(&self.signed_bytes(), &signature)
            .map_err(|_| "the manifest's signature does not verify: it was altered".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        audit::ChainHasher,
        crypto::{KeyPurpose, KeyRing},
    };

    fn signer(byte: u8) -> CheckpointSigner {
        let master = KeyRing::from_bytes(zeroize::Zeroizing::new([byte; 32]));
        let hasher = Arc::new(ChainHasher::new(&master.derive(KeyPurpose::AuditChain)));
        CheckpointSigner::new(&master.derive(KeyPurpose::AuditCheckpoints), hasher).unwrap()
    }

    #[test]
    fn only_an_unaltered_manifest_of_this_key_verifies() {
        let mut manifest = Manifest {
            format: FORMAT.into(),
            occcd_version: "0.1.0".into(),
            created_at_unix_ms: 1,
            audit_head: 42,
            database_bytes: 4096,
            database_sha256: "ab".repeat(32),
            data_root_wrapped_hex: None,
            public_key_hex: String::new(),
            signature_hex: String::new(),
        };
        manifest.sign(&signer(1));
        assert_eq!(manifest.verify(&signer(1)), Ok(()));
        assert!(
            manifest
                .verify(&signer(2))
                .unwrap_err()
                .contains("another master key")
        );
        let mut altered = manifest.clone();
        altered.audit_head = 43;
        assert!(altered.verify(&signer(1)).unwrap_err().contains("altered"));
        let mut other_format = manifest;
        other_format.format = "occcd-backup/9".into();
        assert!(
            other_format
                .verify(&signer(1))
                .unwrap_err()
                .contains("format")
        );
    }
}
