//! Re-authenticating when the daemon asks for it, then trying again.
//!
//! Invariant: a call is retried at most once, and only after the daemon
//! named elevation as the reason (`occc-denial`); the password is asked only
//! when the daemon said it is needed.

use occc_client::{ClientError, OcccClient};

use crate::auth::{self, ElevateWith};

/// The `occc-denial` reason of a refusal.
pub fn denial(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get("occc-denial")
        .and_then(|value| value.to_str().ok())
}

/// Runs `call`; when the daemon wants re-authentication, elevates (TOTP,
/// plus the password when it says so) and runs it once more.
pub async fn elevating<T, F, Fut>(client: &OcccClient, call: F) -> Result<T, ClientError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    match call().await {
        Err(status) => {
            let with = match denial(&status) {
                Some("elevation-required") => ElevateWith::Totp,
                Some("password-elevation-required") => ElevateWith::PasswordAndTotp,
                _ => return Err(status.into()),
            };
            eprintln!("{}", status.message());
            auth::elevate(client, false, with).await?;
            Ok(call().await?)
        }
        Ok(value) => Ok(value),
    }
}
