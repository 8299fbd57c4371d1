//! Bearer secrets: session, enrolment and bootstrap tokens.
//!
//! Invariant: 256 random bits from `SystemRandom`; only an HMAC of a token
//! is ever stored or compared; a token's `Debug` shows nothing; input longer
//! than a token is refused before hashing.

use std::fmt;

use ring::hmac;
use zeroize::Zeroizing;

use crate::crypto::Subkey;

/// Longest token text accepted from a client.
pub const MAX_TOKEN_CHARS: usize = 128;
const TOKEN_BYTES: usize = 32;

/// What a token is for; part of its text, so one kind cannot stand in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A login session.
    Session,
    /// A one-time enrolment.
    Enrollment,
    /// The first-run bootstrap.
    Bootstrap,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Session => "occc_s_",
            Self::Enrollment => "occc_e_",
            Self::Bootstrap => "occc_b_",
        }
    }
}

/// A freshly issued token; shown to its owner once.
pub struct SecretToken(Zeroizing<String>);

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl SecretToken {
    /// A new random token of `kind`.
    pub fn generate(kind: TokenKind) -> Result<Self, ring::error::Unspecified> {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        SystemRandom::new().fill(bytes.as_mut_slice())?;
        let encoded = data_encoding::BASE64URL_NOPAD.encode(bytes.as_slice());
        Ok(Self(Zeroizing::new(format!("{}{encoded}", kind.prefix()))))
    }

    /// The token text, to hand to its owner.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Hashes tokens with the token subkey.
#[derive(Debug)]
pub struct TokenHasher {
    key: hmac::Key,
}

impl TokenHasher {
    /// Keyed with the [`crate::crypto::KeyPurpose::Tokens`] subkey.
    #[must_use]
    pub fn new(subkey: &Subkey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, subkey.expose()),
        }
    }

    /// The stored form of `token`, or `None` when it cannot be a token of `kind`.
    #[must_use]
    pub fn hash(&self, kind: TokenKind, token: &str) -> Option<[u8; 32]> {
        if token.len() > MAX_TOKEN_CHARS || !token.starts_with(kind.prefix()) {
            return None;
        }
        let tag = crate::crypto::hmac_sign_wiped(&self.key, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyPurpose, KeyRing};

    fn hasher() -> TokenHasher {
        TokenHasher::new(&KeyRing::from_bytes(Zeroizing::new([5; 32])).derive(KeyPurpose::Tokens))
    }

    #[test]
    fn tokens_are_random_prefixed_and_hash_only_as_their_kind() {
        let token = SecretToken::generate(TokenKind::Session).unwrap();
        assert!(token.expose().starts_with("occc_s_"));
        assert_eq!(token.expose().len(), 7 + 43);
        assert_ne!(
            token.expose(),
            SecretToken::generate(TokenKind::Session).unwrap().expose()
        );
        assert!(hasher().hash(TokenKind::Session, token.expose()).is_some());
        assert!(
            hasher()
                .hash(TokenKind::Enrollment, token.expose())
                .is_none()
        );
        assert!(
            hasher()
                .hash(TokenKind::Session, &"occc_s_".repeat(30))
                .is_none()
        );
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
