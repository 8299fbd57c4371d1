//! How a session was re-authenticated, and for how long.
//!
//! Invariant: only an elevation that re-proved the password and a second
//! factor may change credentials; every method has one stored name, and a
//! stored name maps back to exactly that method.

use crate::clock::UnixMillis;

/// How a session was re-authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElevationMethod {
    /// A TOTP code.
    Totp,
    /// Password and a TOTP code.
    PasswordTotp,
    /// Password and a recovery code.
    PasswordRecoveryCode,
    /// A signature by the device key with this id.
    DeviceKey(String),
    /// The host's PAM stack (a fingerprint reader).
    Pam,
}

impl ElevationMethod {
    /// The stored and audited name, e.g. `password+totp`, `device_key:dk_…`.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Totp => "totp".to_owned(),
            Self::PasswordTotp => "password+totp".to_owned(),
            Self::PasswordRecoveryCode => "password+recovery_code".to_owned(),
            Self::DeviceKey(id) => format!("device_key:{id}"),
            Self::Pam => "pam".to_owned(),
        }
    }

    /// The method a stored name stands for.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "totp" => Some(Self::Totp),
            "password+totp" => Some(Self::PasswordTotp),
            "password+recovery_code" => Some(Self::PasswordRecoveryCode),
            "pam" => Some(Self::Pam),
            other => other
                .strip_prefix("device_key:")
                .map(|id| Self::DeviceKey(id.to_owned())),
        }
    }

    /// Whether the person re-proved the password and a second factor — the
    /// only elevation that may change credentials.
    #[must_use]
    pub fn proves_password(&self) -> bool {
        matches!(self, Self::PasswordTotp | Self::PasswordRecoveryCode)
    }
}

/// A re-authentication and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevation {
    /// End of the window.
    pub until: UnixMillis,
    /// How it was obtained.
    pub method: ElevationMethod,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elevation_methods_round_trip_and_only_password_ones_prove_it() {
        for method in [
            ElevationMethod::Totp,
            ElevationMethod::PasswordTotp,
            ElevationMethod::PasswordRecoveryCode,
            ElevationMethod::DeviceKey("dk_1".into()),
            ElevationMethod::Pam,
        ] {
            assert_eq!(ElevationMethod::parse(&method.name()), Some(method.clone()));
            assert_eq!(
                method.proves_password(),
                matches!(
                    method,
                    ElevationMethod::PasswordTotp | ElevationMethod::PasswordRecoveryCode
                )
            );
        }
        assert_eq!(ElevationMethod::parse("nonsense"), None);
    }
}
