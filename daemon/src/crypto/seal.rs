//! Sealing secrets stored in the database: AES-256-GCM with a random nonce and
//! associated data that binds each sealed value to its table, column and row.
//!
//! Invariant: a sealed value opens only with the same key *and* the same
//! (table, column, row); moving it to another row or column makes it fail.
//! Layout: `version (1) || nonce (12) || ciphertext || tag (16)`.

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

use super::subkeys::Subkey;

const FORMAT_VERSION: u8 = 1;
const DOMAIN: &[u8] = b"occcd-seal-v1";

/// Where a sealed value lives; it is authenticated along with the value.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// The row's stable identity (e.g. the user id).
    pub row: &'a str,
}

impl SealContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(
            DOMAIN.len() + 24 + self.table.len() + self.column.len() + self.row.len(),
        );
        data.extend_from_slice(DOMAIN);
        for part in [self.table, self.column, self.row] {
            data.extend_from_slice(&(part.len() as u64).to_be_bytes());
            data.extend_from_slice(part.as_bytes());
        }
        data
    }
}

/// Why sealing or opening failed. Deliberately says nothing about the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The value was not sealed with this key for this place, or was altered.
    #[error("sealed value does not open: wrong key, wrong row, or altered")]
    Rejected,
}

/// Seals and opens values with the sealing subkey.
pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    /// A sealer keyed with `subkey` (use [`super::KeyPurpose::Sealing`]).
    pub fn new(subkey: &Subkey) -> Result<Self, SealError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, subkey.expose()).map_err(|_| SealError::Rejected)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` for `context`.
    pub fn seal(&self, context: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce_bytes)
            .map_err(|_| SealError::Random)?;
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.associated_data()),
                buffer.as_mut_slice(),
            )
            .map_err(|_| SealError::Rejected)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + buffer.len() + tag.as_ref().len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(buffer.as_slice());
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// Decrypts a value sealed for `context`; the result is zeroized on drop.
    pub fn open(
        &self,
        context: &SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError::Rejected)?;
        if *version != FORMAT_VERSION || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Rejected);
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| SealError::Rejected)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self
            .key
            .open_in_place(
                nonce,
                Aad::from(context.associated_data()),
                buffer.as_mut_slice(),
            )
            .map_err(|_| SealError::Rejected)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::super::subkeys::{KeyPurpose, MasterKey};
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        let master = MasterKey::from_bytes(Zeroizing::new([byte; 32]));
        Sealer::new(&master.derive(KeyPurpose::Sealing)).unwrap()
    }

    const ALICE: SealContext<'static> = SealContext {
        table: "users",
        column: "totp_secret",
        row: "1",
    };

    #[test]
    fn round_trip() {
        let sealer = sealer(1);
        let sealed = sealer.seal(&ALICE, b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(
            sealer.open(&ALICE, &sealed).unwrap().as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn nonces_differ_between_seals() {
        let sealer = sealer(1);
        assert_ne!(
            sealer.seal(&ALICE, b"x").unwrap(),
            sealer.seal(&ALICE, b"x").unwrap()
        );
    }

    #[test]
    fn another_row_or_column_does_not_open() {
        let sealer = sealer(1);
        let sealed = sealer.seal(&ALICE, b"secret").unwrap();
        let bob = SealContext { row: "2", ..ALICE };
        let other_column = SealContext {
            column: "recovery",
            ..ALICE
        };
        assert_eq!(sealer.open(&bob, &sealed), Err(SealError::Rejected));
        assert_eq!(
            sealer.open(&other_column, &sealed),
            Err(SealError::Rejected)
        );
    }

    #[test]
    fn wrong_key_tampering_and_truncation_are_rejected() {
        let sealed = sealer(1).seal(&ALICE, b"secret").unwrap();
        assert_eq!(sealer(2).open(&ALICE, &sealed), Err(SealError::Rejected));
        let mut flipped = sealed.clone();
        flipped[15] ^= 1;
        assert_eq!(sealer(1).open(&ALICE, &flipped), Err(SealError::Rejected));
        assert_eq!(
            sealer(1).open(&ALICE, &sealed[..10]),
            Err(SealError::Rejected)
        );
        assert_eq!(sealer(1).open(&ALICE, &[]), Err(SealError::Rejected));
    }
}
