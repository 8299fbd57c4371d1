//! Platform authenticators: keys that live on the device and sign occcd's
//! challenges after the operating system's biometric prompt.
//!
//! Invariant: the private key never leaves the authenticator; occcd only ever
//! sees the public key and signatures over challenges it issued.
//! `SoftwareAuthenticator` keeps its key in memory (PKCS#8, zeroized on drop)
//! for tests and headless clients; Secure Enclave and Windows Hello
//! implementations plug in behind the same trait (see docs/device-keys.md).

use std::fmt;

use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};
use zeroize::Zeroizing;

/// Why an authenticator could not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticatorError {
    /// The key could not be created or loaded.
    #[error("device key unavailable: {0}")]
    Key(String),
    /// The person cancelled or failed the OS prompt, or signing failed.
    #[error("the device did not sign: {0}")]
    Sign(String),
}

/// A device-bound P-256 key.
pub trait PlatformAuthenticator: Send + Sync {
    /// Platform label stored with the key, e.g. `software`, `windows-hello`.
    fn platform(&self) -> &str;
    /// The public key as a SEC1 uncompressed point (65 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `payload` (ECDSA P-256, SHA-256, DER) after the OS prompt.
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, AuthenticatorError>;
}

/// An in-memory P-256 key; no OS prompt.
pub struct SoftwareAuthenticator {
    pkcs8: Zeroizing<Vec<u8>>,
    key_pair: EcdsaKeyPair,
    random: SystemRandom,
}

impl fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareAuthenticator(<key redacted>)")
    }
}

impl SoftwareAuthenticator {
    /// A new random key.
    pub fn generate() -> Result<Self, AuthenticatorError> {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &random)
            .map_err(|err| AuthenticatorError::Key(err.to_string()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Loads a key saved with [`SoftwareAuthenticator::pkcs8`].
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, AuthenticatorError> {
        let random = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &random)
            .map_err(|err| AuthenticatorError::Key(err.to_string()))?;
        Ok(Self {
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            key_pair,
            random,
        })
    }

    /// The private key (PKCS#8), to store somewhere only its owner can read.
    #[must_use]
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl PlatformAuthenticator for SoftwareAuthenticator {
    fn platform(&self) -> &str {
        "software"
    }

    fn public_key(&self) -> Vec<u8> {
        self.key_pair.public_key().as_ref().to_vec()
    }

    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, AuthenticatorError> {
        self.key_pair
            .sign(&self.random, payload)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|err| AuthenticatorError::Sign(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    use super::*;

    #[test]
    fn signatures_verify_with_the_public_key_and_survive_a_reload() {
        let key = SoftwareAuthenticator::generate().unwrap();
        let public = key.public_key();
        assert_eq!((public.len(), public[0]), (65, 0x04));
        let signature = key.sign(b"challenge").unwrap();
        let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public);
        assert!(verifier.verify(b"challenge", &signature).is_ok());
        assert!(verifier.verify(b"other", &signature).is_err());
        let reloaded = SoftwareAuthenticator::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(reloaded.public_key(), public);
        assert!(!format!("{key:?}").contains("30 81"));
    }
}
