//! `occc.v1.DeviceKeys`: device-bound keys and the login-method chain.

use std::sync::Arc;

use occc_proto::v1::{self as pb, device_keys_server::DeviceKeys};
use tonic::{Request, Response, Status};

use super::convert::{caller, login_response, peer, session_to_proto, to_completion};
use crate::{
    auth::{
        AuthEngine,
        challenges::{Challenge, ChallengePurpose},
        device_keys::{Assertion, LoginMethod},
    },
    store::DeviceKeyRow,
};

/// Handler of `occc.v1.DeviceKeys`.
#[derive(Debug)]
pub struct DeviceKeysService {
    auth: Arc<AuthEngine>,
}

impl DeviceKeysService {
    /// A handler over `auth`.
    #[must_use]
    pub fn new(auth: Arc<AuthEngine>) -> Self {
        Self { auth }
    }
}

fn challenge_to_proto(challenge: Challenge) -> pb::Challenge {
    pb::Challenge {
        challenge_id: challenge.id,
        payload: challenge.payload,
        expires_at_unix_ms: challenge.expires_at.0,
    }
}

fn key_to_proto(key: DeviceKeyRow, username: &str) -> pb::DeviceKey {
    pb::DeviceKey {
        key_id: key.id,
        username: username.to_owned(),
        name: key.name,
        platform: key.platform,
        created_at_unix_ms: key.created_at,
        last_used_at_unix_ms: key.last_used_at,
    }
}

fn assertion(body: &pb::DeviceKeyAssertion) -> Assertion<'_> {
    Assertion {
        key_id: &body.key_id,
        challenge_id: &body.challenge_id,
        signature: &body.signature,
    }
}

#[tonic::async_trait]
impl DeviceKeys for DeviceKeysService {
    async fn get_login_methods(
        &self,
        request: Request<pb::GetLoginMethodsRequest>,
    ) -> Result<Response<pb::LoginMethods>, Status> {
        let peer = peer(&request)?;
        let methods = self
            .auth
            .login_methods(&request.get_ref().username, peer)
            .await?;
        let methods = methods
            .into_iter()
            .map(|method| match method {
                LoginMethod::DeviceKey => pb::LoginMethod::DeviceKey,
                LoginMethod::PamBiometric => pb::LoginMethod::PamBiometric,
                LoginMethod::PasswordTotp => pb::LoginMethod::PasswordTotp,
            })
            .map(i32::from)
            .collect();
        Ok(Response::new(pb::LoginMethods { methods }))
    }

    async fn create_login_challenge(
        &self,
        request: Request<pb::CreateLoginChallengeRequest>,
    ) -> Result<Response<pb::Challenge>, Status> {
        let peer = peer(&request)?;
        let challenge = self
            .auth
            .device_keys()
            .login_challenge(&request.get_ref().username, peer)?;
        Ok(Response::new(challenge_to_proto(challenge)))
    }

    async fn create_session_challenge(
        &self,
        request: Request<pb::CreateSessionChallengeRequest>,
    ) -> Result<Response<pb::Challenge>, Status> {
        let caller = caller(&request)?;
        let purpose = match pb::ChallengePurpose::try_from(request.get_ref().purpose) {
            Ok(pb::ChallengePurpose::Elevate) => ChallengePurpose::Elevate,
            Ok(pb::ChallengePurpose::Register) => ChallengePurpose::Register,
            _ => {
                return Err(Status::invalid_argument(
                    "purpose: CHALLENGE_PURPOSE_ELEVATE or CHALLENGE_PURPOSE_REGISTER (login challenges come from CreateLoginChallenge)",
                ));
            }
        };
        let challenge = self
            .auth
            .device_keys()
            .session_challenge(&caller.session, purpose)?;
        Ok(Response::new(challenge_to_proto(challenge)))
    }

    async fn register_device_key(
        &self,
        request: Request<pb::RegisterDeviceKeyRequest>,
    ) -> Result<Response<pb::DeviceKey>, Status> {
        let caller = caller(&request)?;
        let username = caller.session.username.clone();
        let body = request.into_inner();
        let auth = Arc::clone(&self.auth);
        let key = to_completion(async move {
            auth.device_keys()
                .register_device_key(
                    caller.acting(),
                    &body.name,
                    &body.platform,
                    &body.public_key,
                    &body.challenge_id,
                    &body.signature,
                )
                .await
        })
        .await?;
        Ok(Response::new(key_to_proto(key, &username)))
    }

    async fn login_with_device_key(
        &self,
        request: Request<pb::DeviceKeyAssertion>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = peer(&request)?;
        let body = request.get_ref();
        let outcome = self
            .auth
            .device_keys()
            .login_with_device_key(peer, &body.username, assertion(body))
            .await?;
        Ok(Response::new(login_response(
            &outcome,
            self.auth.sessions(),
        )))
    }

    async fn elevate_with_device_key(
        &self,
        request: Request<pb::DeviceKeyAssertion>,
    ) -> Result<Response<pb::AuthSession>, Status> {
        let caller = caller(&request)?;
        let elevated = self
            .auth
            .device_keys()
            .elevate_with_device_key(&caller.session, caller.peer, assertion(request.get_ref()))
            .await?;
        Ok(Response::new(session_to_proto(
            &elevated,
            self.auth.sessions(),
            Some(&elevated.id),
        )))
    }

    async fn list_device_keys(
        &self,
        request: Request<pb::ListDeviceKeysRequest>,
    ) -> Result<Response<pb::DeviceKeyList>, Status> {
        let caller = caller(&request)?;
        let wanted = &request.get_ref().username;
        let username = if wanted.is_empty() {
            caller.session.username.clone()
        } else {
            wanted.clone()
        };
        let keys = self
            .auth
            .device_keys()
            .list_device_keys(caller.acting(), Some(&username))
            .await?;
        Ok(Response::new(pb::DeviceKeyList {
            keys: keys
                .into_iter()
                .map(|key| key_to_proto(key, &username))
                .collect(),
        }))
    }

    async fn revoke_device_key(
        &self,
        request: Request<pb::RevokeDeviceKeyRequest>,
    ) -> Result<Response<pb::RevokeDeviceKeyResponse>, Status> {
        let caller = caller(&request)?;
        let (auth, key_id) = (Arc::clone(&self.auth), request.get_ref().key_id.clone());
        to_completion(async move {
            auth.device_keys()
                .revoke_device_key(caller.acting(), &key_id)
                .await
        })
        .await?;
        Ok(Response::new(pb::RevokeDeviceKeyResponse {}))
    }
}
