//! Input checks done before any work: sizes, character sets, formats.
//!
//! Invariant: every string from a client passes one of these before it
//! reaches hashing, the database or a log.

use super::{error::AuthError, password::MAX_PASSWORD_BYTES};

/// Longest username.
pub const MAX_USERNAME_CHARS: usize = 64;

/// A username: 1–64 characters, lowercase ASCII letters, digits, `.`, `_`,
/// `-`, starting with a letter.
pub fn username(value: &str) -> Result<&str, AuthError> {
    let invalid = |reason: &str| AuthError::InvalidInput {
        field: "username",
        reason: reason.to_owned(),
    };
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.len() > MAX_USERNAME_CHARS {
        return Err(invalid(&format!("at most {MAX_USERNAME_CHARS} characters")));
    }
    let mut chars = value.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !starts_with_letter || !rest_ok {
        return Err(invalid(
            "use lowercase letters, digits, '.', '_' or '-', starting with a letter",
        ));
    }
    Ok(value)
}

/// A password as typed at login: present and not oversized.
pub fn password(field: &'static str, value: &str) -> Result<(), AuthError> {
    if value.is_empty() {
        return Err(AuthError::InvalidInput {
            field,
            reason: "must not be empty".to_owned(),
        });
    }
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidInput {
            field,
            reason: format!("at most {MAX_PASSWORD_BYTES} bytes"),
        });
    }
    Ok(())
}

/// A TOTP code: exactly six ASCII digits.
pub fn totp_code(value: &str) -> Result<(), AuthError> {
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AuthError::InvalidInput {
            field: "totp_code",
            reason: "must be the 6 digits your authenticator app shows".to_owned(),
        })
    }
}

/// A token or code field: present and of bounded length.
pub fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), AuthError> {
    if value.is_empty() || value.len() > max {
        return Err(AuthError::InvalidInput {
            field,
            reason: format!("must be 1 to {max} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a", "bob.smith-2", "x_y"] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "1abc",
            "al ice",
            "ålice",
            "a/b",
            &"a".repeat(65),
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_and_passwords() {
        assert!(totp_code("123456").is_ok());
        for bad in ["", "12345", "1234567", "12345a"] {
            assert!(totp_code(bad).is_err(), "{bad:?}");
        }
        assert!(password("password", "").is_err());
        assert!(password("password", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
