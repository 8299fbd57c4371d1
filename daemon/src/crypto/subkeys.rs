//! The master key and the purpose-bound keys derived from it.
//!
//! Invariant: the master key is never used directly; each purpose (database
//! encryption, sealing, audit chain) gets its own HKDF-SHA256 subkey, and every
//! copy of key material is zeroized when dropped and never printed.

use std::fmt;

use ring::hkdf;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// HKDF salt: fixed, so the same master key always yields the same subkeys.
const HKDF_SALT: &[u8] = b"occcd master key v1";

/// What a subkey is for; the label is the HKDF `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// SQLCipher's raw database key.
    Database,
    /// AES-256-GCM sealing of secrets stored in the database.
    Sealing,
    /// HMAC-SHA256 of the audit chain.
    AuditChain,
    /// HMAC-SHA256 of recovery codes.
    RecoveryCodes,
    /// HMAC-SHA256 of session and enrolment tokens.
    Tokens,
    /// HMAC-SHA256 of forensic snapshot manifests.
    Snapshots,
    /// HMAC-SHA256 naming versions of OpenClaw's config (a plain hash of a
    /// text whose redacted layout readers see would let them test guesses
    /// of a weak secret in it).
    ConfigVersions,
    /// The Ed25519 seed signing audit checkpoints and exports (its public
    /// key is what outside verifiers pin; a new master key changes it).
    AuditCheckpoints,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Database => b"occcd/database/sqlcipher",
            Self::Sealing => b"occcd/seal/aes-256-gcm",
            Self::AuditChain => b"occcd/audit/hmac-sha256",
            Self::RecoveryCodes => b"occcd/recovery-codes/hmac-sha256",
            Self::Tokens => b"occcd/tokens/hmac-sha256",
            Self::Snapshots => b"occcd/snapshots/hmac-sha256",
            Self::ConfigVersions => b"occcd/openclaw-config/version/hmac-sha256",
            Self::AuditCheckpoints => b"occcd/audit/checkpoint/ed25519-seed",
        }
    }
}

/// 256-bit master key. `Debug` shows no key material.
pub struct MasterKey(Zeroizing<[u8; 32]>);

/// A 256-bit key for one [`KeyPurpose`]. `Debug` shows no key material.
pub struct Subkey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wraps raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// The key SQLCipher opens the store with (always the master key's own,
    /// see [`super::KeyRing`]).
    #[must_use]
    pub fn database_key(&self) -> Subkey {
        self.derive(KeyPurpose::Database)
    }

    /// The subkey for `purpose` (outside this module, through a
    /// [`super::KeyRing`], which knows which purposes the master key serves).
    #[must_use]
    pub(super) fn derive(&self, purpose: KeyPurpose) -> Subkey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.0.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        // HKDF_SHA256 asked for 32 bytes cannot fail (limit is 255 * 32).
        let filled = prk
            .expand(&[purpose.label()], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(out.as_mut_slice()));
        debug_assert!(filled.is_ok());
        Subkey(out)
    }

    /// Whether two master keys are equal (constant time), for tests and checks.
    #[must_use]
    pub fn same_key_as(&self, other: &MasterKey) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Subkey {
    /// Wraps raw key bytes (a wrapped data root's, see [`super::KeyRing`]).
    pub(super) fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// A copy, zeroized on drop like this one.
    #[must_use]
    pub fn duplicate(&self) -> Self {
        Self(Zeroizing::new(*self.0))
    }

    /// Whether two subkeys are equal (constant time).
    #[must_use]
    pub fn same_as(&self, other: &Subkey) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }

    /// The raw key bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subkey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_get_distinct_stable_keys() {
        let master = MasterKey::from_bytes(Zeroizing::new([7u8; 32]));
        let db = master.derive(KeyPurpose::Database);
        let seal = master.derive(KeyPurpose::Sealing);
        assert_ne!(db.expose(), seal.expose());
        assert_eq!(db.expose(), master.derive(KeyPurpose::Database).expose());
        assert_ne!(db.expose(), &[7u8; 32]);
    }

    #[test]
    fn debug_never_shows_key_material() {
        let master = MasterKey::from_bytes(Zeroizing::new([0xAB; 32]));
        let shown = format!("{master:?} {:?}", master.derive(KeyPurpose::Sealing));
        assert!(!shown.to_lowercase().contains("ab, "), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
