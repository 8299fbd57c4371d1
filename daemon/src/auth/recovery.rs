//! Recovery codes: ten single-use codes of 100 random bits each, shown once
//! in groups (`ABCDE-FGHIJ-KLMNO-PQRST`); only their keyed hashes are stored.
//!
//! Invariant: a candidate is compared with every stored hash in constant time
//! (no early exit), so timing does not tell which slot matched; input longer
//! than a code is refused before any work.

use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::Subkey;

/// Codes issued per set.
pub const CODES_PER_SET: usize = 10;
/// Base32 characters per code: 20 × 5 bits = 100 bits.
const CODE_CHARS: usize = 20;
const GROUP: usize = 5;
/// Longest input considered (a code with separators and spaces).
pub const MAX_CODE_INPUT: usize = 40;

/// A fresh set: the codes to show once, and the hashes to store.
pub struct RecoveryCodeSet {
    /// Grouped codes for the person; zeroized on drop.
    pub codes: Vec<Zeroizing<String>>,
    /// One keyed hash per code, in the same order.
    pub hashes: Vec<Vec<u8>>,
}

impl std::fmt::Debug for RecoveryCodeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodeSet({} codes, <redacted>)", self.codes.len())
    }
}

/// Hashes and issues recovery codes with the recovery-code subkey.
#[derive(Debug)]
pub struct RecoveryCodes {
    key: hmac::Key,
}

impl RecoveryCodes {
    /// Keyed with the [`crate::crypto::KeyPurpose::RecoveryCodes`] subkey.
    #[must_use]
    pub fn new(subkey: &Subkey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, subkey.expose()),
        }
    }

    /// A new set of [`CODES_PER_SET`] codes.
    pub fn issue(&self) -> Result<RecoveryCodeSet, ring::error::Unspecified> {
        use ring::rand::{SecureRandom, SystemRandom};
        let random = SystemRandom::new();
        let mut set = RecoveryCodeSet {
            codes: Vec::with_capacity(CODES_PER_SET),
            hashes: Vec::with_capacity(CODES_PER_SET),
        };
        for _ in 0..CODES_PER_SET {
            let mut bytes = Zeroizing::new([0u8; CODE_CHARS * 5 / 8]);
            random.fill(bytes.as_mut_slice())?;
            let plain = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes.as_slice()));
            set.hashes.push(self.hash_normalized(&plain));
            set.codes.push(group(&plain));
        }
        Ok(set)
    }

    /// Index of the unused hash `candidate` matches, if any.
    #[must_use]
    pub fn find(&self, candidate: &str, unused_hashes: &[Vec<u8>]) -> Option<usize> {
        let normalized = normalize(candidate)?;
        let hash = self.hash_normalized(&normalized);
        let mut found = None;
        for (index, stored) in unused_hashes.iter().enumerate() {
            if bool::from(stored.as_slice().ct_eq(&hash)) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }

    fn hash_normalized(&self, code: &str) -> Vec<u8> {
        crate::crypto::hmac_sign_wiped(&self.key, code.as_bytes())
            .as_ref()
            .to_vec()
    }
}

fn group(plain: &str) -> Zeroizing<String> {
    let chunks: Vec<&str> = plain
        .as_bytes()
        .chunks(GROUP)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    Zeroizing::new(chunks.join("-"))
}

/// Upper-case base32 without separators, or `None` when it cannot be a code.
fn normalize(candidate: &str) -> Option<Zeroizing<String>> {
    if candidate.len() > MAX_CODE_INPUT {
        return None;
    }
    let plain: Zeroizing<String> = Zeroizing::new(
        candidate
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let valid = plain.len() == CODE_CHARS
        && plain
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    valid.then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyPurpose, KeyRing};

    fn codes() -> RecoveryCodes {
        RecoveryCodes::new(
            &KeyRing::from_bytes(Zeroizing::new([9; 32])).derive(KeyPurpose::RecoveryCodes),
        )
    }

    #[test]
    fn a_set_has_ten_distinct_grouped_codes_of_100_bits() {
        let set = codes().issue().unwrap();
        assert_eq!(set.codes.len(), CODES_PER_SET);
        let mut unique: Vec<_> = set.codes.iter().map(|c| c.as_str().to_owned()).collect();
        unique.dedup();
        assert_eq!(unique.len(), CODES_PER_SET);
        for code in &set.codes {
            assert_eq!(code.len(), 23, "{}", code.as_str());
            assert_eq!(code.matches('-').count(), 3);
        }
    }

    #[test]
    fn codes_match_their_slot_in_any_case_and_spacing() {
        let recovery = codes();
        let set = recovery.issue().unwrap();
        assert_eq!(recovery.find(&set.codes[3], &set.hashes), Some(3));
        let sloppy = set.codes[7].to_lowercase().replace('-', " ");
        assert_eq!(recovery.find(&sloppy, &set.hashes), Some(7));
        assert_eq!(
            recovery.find(&set.codes[3], &set.hashes[4..]),
            None,
            "used codes are gone"
        );
    }

    #[test]
    fn junk_and_oversized_input_never_match() {
        let recovery = codes();
        let set = recovery.issue().unwrap();
        for junk in [
            "",
            "AAAAA-AAAAA",
            &"A".repeat(1000),
            "11111-11111-11111-11111",
        ] {
            assert_eq!(recovery.find(junk, &set.hashes), None);
        }
    }
}
