//! Logging in: device-bound keys, password + TOTP, and the chain that tries
//! them (and PAM biometrics) in the order the daemon recommends.
//!
//! Invariant: the chain tries a biometric method only if the daemon lists it
//! for the user and the caller can use it; any biometric failure falls back
//! to password + TOTP, never to nothing.

use occc_proto::v1 as pb;

use crate::{
    ClientError, OcccClient, PamPrompter, SessionToken, authenticator::PlatformAuthenticator,
};

/// A device key the caller holds: its id at occcd and the authenticator.
pub struct DeviceCredential<'a> {
    /// Key id returned at registration.
    pub key_id: &'a str,
    /// The authenticator holding the private key.
    pub authenticator: &'a dyn PlatformAuthenticator,
}

impl std::fmt::Debug for DeviceCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The biometric methods this caller can use; the chain tries those the
/// daemon offers, in its order.
#[derive(Default, Clone, Copy)]
pub struct Biometrics<'a> {
    /// A device key (Touch ID, Windows Hello, software key).
    pub device: Option<&'a DeviceCredential<'a>>,
    /// Someone to relay a PAM stack's prompts to (a fingerprint reader).
    pub pam: Option<&'a dyn PamPrompter>,
}

impl std::fmt::Debug for Biometrics<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Biometrics")
            .field("device", &self.device)
            .field("pam", &self.pam.is_some())
            .finish()
    }
}

fn sign_error(err: crate::authenticator::AuthenticatorError) -> ClientError {
    ClientError::Rpc(tonic::Status::unauthenticated(err.to_string()))
}

impl OcccClient {
    /// A challenge for this client's session, signed by `authenticator`:
    /// returns (challenge id, signature).
    async fn sign_session_challenge(
        &self,
        purpose: pb::ChallengePurpose,
        authenticator: &dyn PlatformAuthenticator,
    ) -> Result<(String, Vec<u8>), ClientError> {
        let challenge = self
            .device_keys()
            .create_session_challenge(pb::CreateSessionChallengeRequest {
                purpose: purpose.into(),
            })
            .await?
            .into_inner();
        let signature = authenticator.sign(&challenge.payload).map_err(sign_error)?;
        Ok((challenge.challenge_id, signature))
    }

    /// Registers `authenticator`'s key for the (elevated) session's user.
    pub async fn register_device_key(
        &self,
        name: &str,
        authenticator: &dyn PlatformAuthenticator,
    ) -> Result<pb::DeviceKey, ClientError> {
        let (challenge_id, signature) = self
            .sign_session_challenge(pb::ChallengePurpose::Register, authenticator)
            .await?;
        let key = self
            .device_keys()
            .register_device_key(pb::RegisterDeviceKeyRequest {
                name: name.to_owned(),
                platform: authenticator.platform().to_owned(),
                public_key: authenticator.public_key(),
                challenge_id,
                signature,
            })
            .await?;
        Ok(key.into_inner())
    }

    /// Logs in as `username` with a device key; returns a client with the session.
    pub async fn login_with_device_key(
        &self,
        username: &str,
        device: &DeviceCredential<'_>,
    ) -> Result<OcccClient, ClientError> {
        let challenge = self
            .device_keys()
            .create_login_challenge(pb::CreateLoginChallengeRequest {
                username: username.to_owned(),
            })
            .await?
            .into_inner();
        let signature = device
            .authenticator
            .sign(&challenge.payload)
            .map_err(sign_error)?;
        let mut response = self
            .device_keys()
            .login_with_device_key(pb::DeviceKeyAssertion {
                username: username.to_owned(),
                key_id: device.key_id.to_owned(),
                challenge_id: challenge.challenge_id,
                signature,
            })
            .await?
            .into_inner();
        Ok(self.with_session(SessionToken::new(std::mem::take(
            &mut response.session_token,
        ))))
    }

    /// Elevates this client's session with a device key.
    pub async fn elevate_with_device_key(
        &self,
        device: &DeviceCredential<'_>,
    ) -> Result<pb::AuthSession, ClientError> {
        let (challenge_id, signature) = self
            .sign_session_challenge(pb::ChallengePurpose::Elevate, device.authenticator)
            .await?;
        let session = self
            .device_keys()
            .elevate_with_device_key(pb::DeviceKeyAssertion {
                username: String::new(),
                key_id: device.key_id.to_owned(),
                challenge_id,
                signature,
            })
            .await?;
        Ok(session.into_inner())
    }

    /// Logs in with password and TOTP code; returns a client with the session.
    pub async fn login_with_password(
        &self,
        username: &str,
        password: &str,
        totp_code: &str,
    ) -> Result<OcccClient, ClientError> {
        let mut response = self
            .auth()
            .login(pb::LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                second_factor: Some(pb::login_request::SecondFactor::TotpCode(
                    totp_code.to_owned(),
                )),
            })
            .await?
            .into_inner();
        Ok(self.with_session(SessionToken::new(std::mem::take(
            &mut response.session_token,
        ))))
    }

    /// The fallback chain: each biometric method the daemon offers and
    /// `biometrics` can use, in the daemon's order, then password + TOTP from
    /// `fallback` (asked only when needed). Returns the logged-in client and
    /// the method that worked.
    pub async fn login_chain<F>(
        &self,
        username: &str,
        biometrics: Biometrics<'_>,
        fallback: F,
    ) -> Result<(OcccClient, pb::LoginMethod), ClientError>
    where
        F: FnOnce() -> Result<(String, String), ClientError>,
    {
        let offered = self
            .device_keys()
            .get_login_methods(pb::GetLoginMethodsRequest {
                username: username.to_owned(),
            })
            .await?
            .into_inner();
        let methods: Vec<pb::LoginMethod> = offered.methods().collect();
        for method in methods {
            match method {
                pb::LoginMethod::DeviceKey => {
                    let Some(device) = biometrics.device else {
                        continue;
                    };
                    if let Ok(client) = self.login_with_device_key(username, device).await {
                        return Ok((client, method));
                    }
                }
                pb::LoginMethod::PamBiometric => {
                    let Some(prompter) = biometrics.pam else {
                        continue;
                    };
                    match self.login_with_pam(username, prompter).await {
                        Ok(client) => return Ok((client, method)),
                        Err(err) => prompter.show(&format!("{err}; falling back"), true),
                    }
                }
                pb::LoginMethod::PasswordTotp => {
                    let (password, code) = fallback()?;
                    let client = self.login_with_password(username, &password, &code).await?;
                    return Ok((client, method));
                }
                pb::LoginMethod::Unspecified => {}
            }
        }
        Err(ClientError::Rpc(tonic::Status::unauthenticated(
            "no login method succeeded",
        )))
    }
}
