//! `occc.v1.Users`: account and session administration.

use std::sync::Arc;

use occc_proto::v1::{self as pb, users_server::Users};
use tonic::{Request, Response, Status};

use super::convert::{
    caller, profile_to_proto, role_from_proto, role_to_proto, session_to_proto, to_completion,
};
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
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::UserList>, Status> {
        let request = request.get_ref();
        let page = self
            .auth
            .admin()
            .list_users(request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::UserList {
            users: page.users.iter().map(profile_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let role = role_from_proto(body.role)?;
        let (auth, username) = (Arc::clone(&self.auth), body.username.clone());
        let (profile, token, expires) = to_completion(async move {
            auth.admin()
                .create_user(caller.acting(), &username, role)
                .await
        })
        .await?;
        Ok(Response::new(enrolment_response(&profile, &token, expires)))
    }

    async fn set_user_role(
        &self,
        request: Request<pb::SetUserRoleRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let role = role_from_proto(body.role)?;
        let (auth, username) = (Arc::clone(&self.auth), body.username.clone());
        let profile = to_completion(async move {
            auth.admin()
                .set_role(caller.acting(), &username, role)
                .await
        })
        .await?;
        Ok(Response::new(profile_to_proto(&profile)))
    }

    async fn disable_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        let profile = to_completion(async move {
            auth.admin()
                .set_enabled(caller.acting(), &username, false)
                .await
        })
        .await?;
        Ok(Response::new(profile_to_proto(&profile)))
    }

    async fn enable_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        let profile = to_completion(async move {
            auth.admin()
                .set_enabled(caller.acting(), &username, true)
                .await
        })
        .await?;
        Ok(Response::new(profile_to_proto(&profile)))
    }

    async fn delete_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        to_completion(async move { auth.admin().delete_user(caller.acting(), &username).await })
            .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn reset_totp(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        let (profile, token, expires) =
            to_completion(async move { auth.admin().reset_totp(caller.acting(), &username).await })
                .await?;
        Ok(Response::new(enrolment_response(&profile, &token, expires)))
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        let profile =
            to_completion(async move { auth.admin().unlock(caller.acting(), &username).await })
                .await?;
        Ok(Response::new(profile_to_proto(&profile)))
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
        let (auth, id) = (Arc::clone(&self.auth), request.get_ref().session_id.clone());
        let revoked =
            to_completion(async move { auth.admin().revoke_session(caller.acting(), &id).await })
                .await?;
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = caller(&request)?;
        let (auth, username) = (Arc::clone(&self.auth), request.get_ref().username.clone());
        let revoked = to_completion(async move {
            auth.admin()
                .revoke_sessions_of(caller.acting(), &username)
                .await
        })
        .await?;
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn link_os_account(
        &self,
        request: Request<pb::LinkOsAccountRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let os_account = Some(body.os_account.clone()).filter(|name| !name.is_empty());
        let (auth, username) = (Arc::clone(&self.auth), body.username.clone());
        let profile = to_completion(async move {
            auth.pam()
                .link_os_account(caller.acting(), &username, os_account.as_deref())
                .await
        })
        .await?;
        Ok(Response::new(profile_to_proto(&profile)))
    }
}
