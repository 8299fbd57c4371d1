//! The `authorization` metadata of a request: header values (split at 0x00)
//! read as the gate reads them, and a token found there hashed for each
//! kind as the session store would look it up; the recovery-code check on
//! the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use occcd::{
    auth::{
        recovery::RecoveryCodes,
        token::{TokenHasher, TokenKind},
    },
    crypto::{KeyPurpose, KeyRing},
    gate::{AUTHORIZATION, BearerHeader, bearer_token},
};

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    for value in data.split(|&b| b == 0) {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, value);
        }
    }
    let keys = KeyRing::from_bytes(zeroize::Zeroizing::new([7; 32]));
    if let BearerHeader::Token(token) = bearer_token(&headers) {
        let hasher = TokenHasher::new(&keys.derive(KeyPurpose::Tokens));
        for kind in [TokenKind::Session, TokenKind::Enrollment, TokenKind::Bootstrap] {
            let _ = hasher.hash(kind, &token);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let codes = RecoveryCodes::new(&keys.derive(KeyPurpose::RecoveryCodes));
        let _ = codes.find(text, &[vec![0; 32], vec![1; 32]]);
    }
});
