//! `occc.v1.Users`: account and session administration.

use std::sync::Arc;

use occc_proto::v1::{self as pb, users_server::Users};
use tonic::{Request, Response, Status};

use super::convert::{caller, profile_to_proto, role_from_proto, role_to_proto, session_to_proto};
use crate::{
    auth::{AuthEngine, UserProfile},
    clock::UnixMillis,
};

/// Handler of `occc.v1.Users`.
#[derive(Debug)]
pub struct UsersService {
    auth: Arc<AuthEngine>,
}

impl UsersService {
    /// A handler over `auth`.
    #[must_use]
    pub fn new(auth: Arc<AuthEngine>) -> Self {
        Self { auth }
    }
}

fn enrolment_response(
    profile: &UserProfile,
    token: &crate::auth::token::SecretToken,
    expires: UnixMillis,
) -> pb::CreateUserResponse {
    pb::CreateUserResponse {
        user: Some(profile_to_proto(profile)),
        enrollment_token: token.expose().to_owned(),
        enrollment_expires_at_unix_ms: expires.0,
    }
}

#[tonic::async_trait]
impl Users for UsersService {
    async fn list_users(
        &self,
        _request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::UserList>, Status> {
        let users = self.auth.list_users().await?;
        Ok(Response::new(pb::UserList {
            users: users.iter().map(profile_to_proto).collect(),
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let role = role_from_proto(body.role)?;
        let by = caller.acting();
        let (profile, token, expires) = self.auth.create_user(by, &body.username, role).await?;
        Ok(Response::new(enrolment_response(&profile, &token, expires)))
    }

    async fn set_user_role(
        &self,
        request: Request<pb::SetUserRoleRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let role = role_from_proto(body.role)?;
        let by = caller.acting();
        Ok(Response::new(profile_to_proto(
            &self.auth.set_role(by, &body.username, role).await?,
        )))
    }

    async fn disable_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        Ok(Response::new(profile_to_proto(
            &self
                .auth
                .set_enabled(by, &request.get_ref().username, false)
                .await?,
        )))
    }

    async fn enable_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        Ok(Response::new(profile_to_proto(
            &self
                .auth
                .set_enabled(by, &request.get_ref().username, true)
                .await?,
        )))
    }

    async fn delete_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        self.auth
            .delete_user(by, &request.get_ref().username)
            .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn reset_totp(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        let (profile, token, expires) = self
            .auth
            .reset_totp(by, &request.get_ref().username)
            .await?;
        Ok(Response::new(enrolment_response(&profile, &token, expires)))
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        Ok(Response::new(profile_to_proto(
            &self.auth.unlock(by, &request.get_ref().username).await?,
        )))
    }

    async fn list_active_sessions(
        &self,
        _request: Request<pb::ListActiveSessionsRequest>,
    ) -> Result<Response<pb::ActiveSessionList>, Status> {
        let sessions = self
            .auth
            .live_sessions(None)
            .iter()
            .map(|s| pb::ActiveSession {
                username: s.username.clone(),
                role: role_to_proto(s.role).into(),
                since_unix_ms: s.created_at.0,
            })
            .collect();
        Ok(Response::new(pb::ActiveSessionList { sessions }))
    }

    async fn list_all_sessions(
        &self,
        request: Request<pb::ListAllSessionsRequest>,
    ) -> Result<Response<pb::SessionList>, Status> {
        let caller = caller(&request)?;
        let store = self.auth.sessions();
        let sessions = self.auth.live_sessions(None);
        Ok(Response::new(pb::SessionList {
            sessions: sessions
                .iter()
                .map(|s| session_to_proto(s, store, Some(&caller.session.id)))
                .collect(),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        let revoked = self
            .auth
            .revoke_session(by, &request.get_ref().session_id)
            .await?;
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        let revoked = self
            .auth
            .revoke_sessions_of(by, &request.get_ref().username)
            .await?;
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn link_os_account(
        &self,
        request: Request<pb::LinkOsAccountRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let os_account = Some(body.os_account.as_str()).filter(|name| !name.is_empty());
        let profile = self
            .auth
            .link_os_account(caller.acting(), &body.username, os_account)
            .await?;
        Ok(Response::new(profile_to_proto(&profile)))
    }
}
