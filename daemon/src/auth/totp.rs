//! TOTP (RFC 6238) for authenticator apps: 160-bit secrets, SHA-1, 6 digits,
//! 30-second steps, one step of clock skew either way.
//!
//! Invariant: a code is accepted only for a time step later than the last
//! step accepted for that user, so no code works twice; codes are compared in
//! constant time; the secret is zeroized on drop and never printed.

use std::fmt;

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::clock::UnixMillis;

/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "OpenClaw Command Center";
const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
const SECRET_BYTES: usize = 20;
/// Accepted steps on either side of the current one.
const SKEW_STEPS: i64 = 1;

/// A TOTP shared secret.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Why a TOTP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// totp-rs refused the parameters (e.g. an account name with a colon).
    #[error("cannot build the TOTP enrolment: {0}")]
    Build(String),
}

/// What an authenticator app needs to enrol.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// `otpauth://totp/…` URI.
    pub otpauth_uri: Zeroizing<String>,
    /// The same URI as a QR code, PNG bytes.
    pub qr_png: Zeroizing<Vec<u8>>,
    /// The secret in base32, for typing in by hand.
    pub secret_base32: Zeroizing<String>,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

impl TotpSecret {
    /// A new random 160-bit secret.
    pub fn generate() -> Result<Self, TotpError> {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TotpError::Random)?;
        Ok(Self(bytes))
    }

    /// Wraps secret bytes read from the store.
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The raw secret, for sealing.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, digits: usize, account: &str) -> Result<TOTP, TotpError> {
        TOTP::new(
            Algorithm::SHA1,
            digits,
            1,
            STEP_SECONDS,
            self.0.to_vec(),
            Some(ISSUER.to_owned()),
            account.to_owned(),
        )
        .map_err(|err| TotpError::Build(err.to_string()))
    }

    /// URI, QR code and base32 secret for `account` (the username).
    pub fn enrolment(&self, account: &str) -> Result<TotpEnrolment, TotpError> {
        let totp = self.totp(DIGITS, account)?;
        let qr_png = totp.get_qr_png().map_err(TotpError::Build)?;
        Ok(TotpEnrolment {
            otpauth_uri: Zeroizing::new(totp.get_url()),
            qr_png: Zeroizing::new(qr_png),
            secret_base32: Zeroizing::new(totp.get_secret_base32()),
        })
    }

    /// The 6-digit code at `now`, as an authenticator app shows it.
    #[cfg(test)]
    pub(crate) fn code_at(&self, now: UnixMillis) -> Zeroizing<String> {
        self.code_at_step(step_of(now), DIGITS).unwrap_or_default()
    }

    /// The code for time step `step` with `digits` digits.
    fn code_at_step(&self, step: i64, digits: usize) -> Result<Zeroizing<String>, TotpError> {
        let code = self.code_unwiped(step, digits);
        // The secret went through HMAC-SHA1 blocks on this stack.
        crate::crypto::scrub_stack();
        code
    }

    #[inline(never)]
    fn code_unwiped(&self, step: i64, digits: usize) -> Result<Zeroizing<String>, TotpError> {
        let seconds = u64::try_from(step).unwrap_or(0) * STEP_SECONDS;
        Ok(Zeroizing::new(
            self.totp(digits, "occcd")?.generate(seconds),
        ))
    }

    /// Checks `code` at `now`; returns the matched step if it is within the
    /// skew window and later than `last_accepted_step`.
    pub fn accept(
        &self,
        code: &str,
        now: UnixMillis,
        last_accepted_step: Option<i64>,
    ) -> Result<Option<i64>, TotpError> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let current = step_of(now);
        let mut matched = None;
        // Check every step in the window, so timing does not reveal which matched.
        for step in (current - SKEW_STEPS)..=(current + SKEW_STEPS) {
            let expected = self.code_at_step(step, DIGITS)?;
            let equal = bool::from(expected.as_bytes().ct_eq(code.as_bytes()));
            if equal && last_accepted_step.is_none_or(|last| step > last) && matched.is_none() {
                matched = Some(step);
            }
        }
        Ok(matched)
    }
}

/// The TOTP time step containing `now`.
#[must_use]
pub fn step_of(now: UnixMillis) -> i64 {
    now.0.div_euclid(1_000 * STEP_SECONDS as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec()))
    }

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let vectors = [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, expected) in vectors {
            let step = time / 30;
            assert_eq!(
                rfc_secret().code_at_step(step, 8).unwrap().as_str(),
                expected,
                "T = {time}"
            );
        }
    }

    #[test]
    fn accepts_one_step_of_skew_but_not_two() {
        let secret = TotpSecret::generate().unwrap();
        let now = UnixMillis(1_700_000_000_000);
        let current = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = secret.code_at_step(current + offset, DIGITS).unwrap();
            assert_eq!(
                secret.accept(&code, now, None).unwrap().is_some(),
                accepted,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_code_is_refused_at_or_before_the_last_accepted_step() {
        let secret = TotpSecret::generate().unwrap();
        let now = UnixMillis(1_700_000_000_000);
        let current = step_of(now);
        let code = secret.code_at_step(current, DIGITS).unwrap();
        let step = secret.accept(&code, now, None).unwrap().unwrap();
        assert_eq!(
            secret.accept(&code, now, Some(step)).unwrap(),
            None,
            "replay"
        );
        let previous = secret.code_at_step(current - 1, DIGITS).unwrap();
        assert_eq!(
            secret.accept(&previous, now, Some(step)).unwrap(),
            None,
            "older step"
        );
    }

    #[test]
    fn malformed_codes_are_refused_without_work() {
        let secret = TotpSecret::generate().unwrap();
        for code in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(
                secret.accept(code, UnixMillis(0), None).unwrap(),
                None,
                "{code:?}"
            );
        }
    }

    #[test]
    fn enrolment_has_uri_qr_and_base32_secret() {
        let secret = TotpSecret::generate().unwrap();
        let enrolment = secret.enrolment("alice").unwrap();
        assert!(
            enrolment.otpauth_uri.starts_with("otpauth://totp/"),
            "{}",
            enrolment.otpauth_uri.as_str()
        );
        assert!(enrolment.otpauth_uri.contains("secret="));
        assert!(enrolment.qr_png.starts_with(b"\x89PNG"));
        assert_eq!(enrolment.secret_base32.len(), 32);
        assert!(!format!("{secret:?} {enrolment:?}").contains(enrolment.secret_base32.as_str()));
    }
}
