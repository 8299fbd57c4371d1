//! The messages that carry passwords, codes, tokens and TOTP secrets.
//!
//! Invariant: each of them (the list in `build.rs`) wipes its secret fields
//! when dropped — on the daemon's side once a request is handled or a
//! response encoded, on a client's once it is done with one — and its
//! `Debug` prints `<redacted>` in their place, so a secret is neither left
//! behind in freed memory by these types nor printed by a stray `{:?}`.

use std::fmt;

use zeroize::Zeroize;

use crate::v1;

const REDACTED: &str = "<redacted>";

/// Implements `Drop` (zeroizing the `wipe` fields) and a redacting `Debug`
/// (the `wipe` and `hide` fields shown as `<redacted>`) for a message.
macro_rules! secret_bearing {
    ($(
        $message:ident {
            wipe: [$($wipe:ident),+],
            hide: [$($hide:ident),*],
            show: [$($show:ident),*] $(,)?
        }
    )+) => {$(
        impl Drop for v1::$message {
            fn drop(&mut self) {
                $(self.$wipe.zeroize();)+
            }
        }

        impl fmt::Debug for v1::$message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($message))
                    $(.field(stringify!($show), &self.$show))*
                    $(.field(stringify!($wipe), &REDACTED))+
                    $(.field(stringify!($hide), &REDACTED))*
                    .finish()
            }
        }
    )+};
}

secret_bearing! {
    BootstrapRequest { wipe: [bootstrap_token, password], hide: [], show: [username] }
    StartEnrollmentRequest { wipe: [enrollment_token, password], hide: [], show: [] }
    EnrollmentStarted { wipe: [enrollment_token], hide: [totp], show: [] }
    TotpEnrollment { wipe: [otpauth_uri, qr_png, secret_base32], hide: [], show: [] }
    ConfirmEnrollmentRequest { wipe: [enrollment_token, totp_code], hide: [], show: [] }
    RecoveryCodes { wipe: [codes], hide: [], show: [] }
    LoginRequest { wipe: [password], hide: [second_factor], show: [username] }
    LoginResponse { wipe: [session_token], hide: [], show: [session, user] }
    ElevateRequest { wipe: [totp_code, password, recovery_code], hide: [], show: [] }
    ChangePasswordRequest { wipe: [current_password, new_password], hide: [], show: [] }
    ConfirmTotpReenrollmentRequest { wipe: [totp_code], hide: [], show: [] }
    CreateUserResponse {
        wipe: [enrollment_token],
        hide: [],
        show: [user, enrollment_expires_at_unix_ms],
    }
    PamAnswer { wipe: [text], hide: [], show: [] }
    ConfigFile {
        wipe: [text],
        hide: [],
        show: [container, path, exists, redacted, version, problems, latest_number, accepted],
    }
    UpdateConfigRequest { wipe: [text], hide: [], show: [container, expected_version, note] }
    ConfigVersionText { wipe: [text], hide: [], show: [version, redacted] }
    ConfigPreview {
        wipe: [diff],
        hide: [],
        show: [version, current_version, changes, needs_super_admin],
    }
    ConfigDiff { wipe: [diff], hide: [], show: [redacted] }
}

impl Drop for v1::login_request::SecondFactor {
    fn drop(&mut self) {
        match self {
            Self::TotpCode(code) | Self::RecoveryCode(code) => code.zeroize(),
        }
    }
}

impl fmt::Debug for v1::login_request::SecondFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::TotpCode(_) => "TotpCode",
            Self::RecoveryCode(_) => "RecoveryCode",
        };
        f.debug_tuple(kind).field(&REDACTED).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_a_secret() {
        let request = v1::LoginRequest {
            username: "alice".to_owned(),
            password: "hunter2-hunter2".to_owned(),
            second_factor: Some(v1::login_request::SecondFactor::TotpCode(
                "123456".to_owned(),
            )),
        };
        let printed = format!("{request:?}");
        assert!(printed.contains("alice"), "{printed}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("123456"),
            "{printed}"
        );
        let codes = v1::RecoveryCodes {
            codes: vec!["aaaa-bbbb".to_owned()],
        };
        assert!(!format!("{codes:?}").contains("aaaa"));
    }
}
