//! What a person or a peer sends to authenticate, and what the store keeps
//! to check it: usernames, passwords, codes, `authorization` metadata, and
//! the stored password hashes (PHC strings).

use occcd::{
    auth::{
        input, password,
        recovery::RecoveryCodes,
        token::{TokenHasher, TokenKind},
    },
    crypto::{KeyPurpose, KeyRing},
    gate::{AUTHORIZATION, BearerHeader, bearer_token},
};

/// Usernames, passwords (checked, normalized), TOTP codes, bounded fields.
pub fn auth_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = input::username(text);
    let _ = input::password("password", text);
    let _ = input::totp_code(text);
    let _ = input::bounded("field", text, 256);
    let _ = password::normalize(text);
    let _ = password::check_new_password("alice", text);
}

/// `authorization` header values (split at 0x00) read as the gate reads
/// them, a token found there hashed for each kind as the session store
/// looks it up; the recovery-code check on the same text.
pub fn authorization(data: &[u8]) {
    let mut headers = http::HeaderMap::new();
    for value in data.split(|&b| b == 0) {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(AUTHORIZATION, value);
        }
    }
    let keys = KeyRing::from_bytes(zeroize::Zeroizing::new([7; 32]));
    if let BearerHeader::Token(token) = bearer_token(&headers) {
        let hasher = TokenHasher::new(&keys.derive(KeyPurpose::Tokens));
        for kind in [
            TokenKind::Session,
            TokenKind::Enrollment,
            TokenKind::Bootstrap,
        ] {
            let _ = hasher.hash(kind, &token);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let codes = RecoveryCodes::new(&keys.derive(KeyPurpose::RecoveryCodes));
        let _ = codes.find(text, &[vec![0; 32], vec![1; 32]]);
    }
}

/// A stored password hash as a login reads it: parsed and its cost bounded
/// before any hashing. Argon2 itself runs only when the string names a cost
/// of at most 64 KiB and 2 passes, so a run stays fast while still
/// reaching the verification with every salt, digest and version shape.
pub fn phc_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(configured) = argon2::Params::new(64 * 1024, 3, 4, None) else {
        return;
    };
    let Ok((parsed, named)) = password::stored_hash(&configured, text) else {
        return;
    };
    if named.m_cost() <= 64 && named.t_cost() <= 2 {
        use argon2::PasswordVerifier as _;
        let _ = argon2::Argon2::default().verify_password(b"password", &parsed);
    }
}
