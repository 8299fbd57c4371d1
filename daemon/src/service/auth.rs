//! `occc.v1.Auth`: bootstrap, enrolment, login, sessions, elevation, self-service.

use std::sync::Arc;

use occc_proto::v1::{self as pb, auth_server::Auth, login_request::SecondFactor as WireFactor};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::convert::{
    caller, enrolment_to_proto, login_response, peer, profile_to_proto, session_to_proto,
    to_completion,
};
use crate::auth::{AuthEngine, ElevationProof, SecondFactor};

/// Handler of `occc.v1.Auth`.
#[derive(Debug)]
pub struct AuthService {
    auth: Arc<AuthEngine>,
}

impl AuthService {
    /// A handler over `auth`.
    #[must_use]
    pub fn new(auth: Arc<AuthEngine>) -> Self {
        Self { auth }
    }
}

fn codes(codes: Vec<zeroize::Zeroizing<String>>) -> pb::RecoveryCodes {
    pb::RecoveryCodes {
        codes: codes.iter().map(|code| code.to_string()).collect(),
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn bootstrap(
        &self,
        request: Request<pb::BootstrapRequest>,
    ) -> Result<Response<pb::EnrollmentStarted>, Status> {
        let peer = peer(&request)?;
        let body = request.into_inner();
        let started = self
            .auth
            .enrolment()
            .bootstrap(
                Some(peer),
                &body.bootstrap_token,
                &body.username,
                &body.password,
            )
            .await?;
        Ok(Response::new(pb::EnrollmentStarted {
            enrollment_token: started.enrollment_token.expose().to_owned(),
            totp: Some(enrolment_to_proto(&started.totp)),
        }))
    }

    async fn start_enrollment(
        &self,
        request: Request<pb::StartEnrollmentRequest>,
    ) -> Result<Response<pb::EnrollmentStarted>, Status> {
        let peer = peer(&request)?;
        let body = request.into_inner();
        let totp = self
            .auth
            .enrolment()
            .start_enrollment(Some(peer), &body.enrollment_token, &body.password)
            .await?;
        Ok(Response::new(pb::EnrollmentStarted {
            enrollment_token: body.enrollment_token.clone(),
            totp: Some(enrolment_to_proto(&totp)),
        }))
    }

    async fn confirm_enrollment(
        &self,
        request: Request<pb::ConfirmEnrollmentRequest>,
    ) -> Result<Response<pb::RecoveryCodes>, Status> {
        let peer = peer(&request)?;
        let body = request.into_inner();
        let issued = self
            .auth
            .enrolment()
            .confirm_enrollment(Some(peer), &body.enrollment_token, &body.totp_code)
            .await?;
        Ok(Response::new(codes(issued)))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = peer(&request)?;
        let body = request.into_inner();
        let factor = match &body.second_factor {
            Some(WireFactor::TotpCode(code)) => SecondFactor::Totp(code),
            Some(WireFactor::RecoveryCode(code)) => SecondFactor::RecoveryCode(code),
            None => {
                return Err(Status::invalid_argument(
                    "second_factor: send totp_code or recovery_code",
                ));
            }
        };
        let outcome = self
            .auth
            .logins()
            .login(peer, &body.username, &body.password, factor)
            .await?;
        Ok(Response::new(login_response(
            &outcome,
            self.auth.sessions(),
        )))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let caller = caller(&request)?;
        let auth = Arc::clone(&self.auth);
        to_completion(async move { auth.logins().logout(&caller.session, caller.peer).await })
            .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn elevate(
        &self,
        request: Request<pb::ElevateRequest>,
    ) -> Result<Response<pb::AuthSession>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let factor = if body.recovery_code.is_empty() {
            SecondFactor::Totp(&body.totp_code)
        } else if body.totp_code.is_empty() {
            SecondFactor::RecoveryCode(&body.recovery_code)
        } else {
            return Err(Status::invalid_argument(
                "send totp_code or recovery_code, not both",
            ));
        };
        let proof = ElevationProof {
            password: Some(body.password.as_str()).filter(|p| !p.is_empty()),
            factor,
        };
        let elevated = self
            .auth
            .logins()
            .elevate(&caller.session, caller.peer, proof)
            .await?;
        Ok(Response::new(session_to_proto(
            &elevated,
            self.auth.sessions(),
            Some(&elevated.id),
        )))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = caller(&request)?;
        let profile = self.auth.logins().who_am_i(&caller.session).await?;
        let sessions = self.auth.sessions();
        Ok(Response::new(pb::WhoAmIResponse {
            user: Some(profile_to_proto(&profile)),
            session: Some(session_to_proto(
                &caller.session,
                sessions,
                Some(&caller.session.id),
            )),
            permissions: caller
                .session
                .role
                .permissions()
                .iter()
                .map(|p| p.name().to_owned())
                .collect(),
        }))
    }

    async fn list_my_sessions(
        &self,
        request: Request<pb::ListMySessionsRequest>,
    ) -> Result<Response<pb::SessionList>, Status> {
        let caller = caller(&request)?;
        let sessions = self.auth.sessions();
        let mine = self.auth.live_sessions(Some(caller.session.user_id));
        Ok(Response::new(pb::SessionList {
            sessions: mine
                .iter()
                .map(|s| session_to_proto(s, sessions, Some(&caller.session.id)))
                .collect(),
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let current = Zeroizing::new(body.current_password.clone());
        let new = Zeroizing::new(body.new_password.clone());
        let auth = Arc::clone(&self.auth);
        to_completion(async move {
            auth.own_credentials()
                .change_password(caller.acting(), &current, &new)
                .await
        })
        .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn start_totp_reenrollment(
        &self,
        request: Request<pb::StartTotpReenrollmentRequest>,
    ) -> Result<Response<pb::TotpEnrollment>, Status> {
        let caller = caller(&request)?;
        let by = caller.acting();
        let enrolment = self
            .auth
            .own_credentials()
            .start_totp_reenrollment(by)
            .await?;
        Ok(Response::new(enrolment_to_proto(&enrolment)))
    }

    async fn confirm_totp_reenrollment(
        &self,
        request: Request<pb::ConfirmTotpReenrollmentRequest>,
    ) -> Result<Response<pb::ConfirmTotpReenrollmentResponse>, Status> {
        let caller = caller(&request)?;
        let code = Zeroizing::new(request.get_ref().totp_code.clone());
        let auth = Arc::clone(&self.auth);
        to_completion(async move {
            auth.own_credentials()
                .confirm_totp_reenrollment(caller.acting(), &code)
                .await
        })
        .await?;
        Ok(Response::new(pb::ConfirmTotpReenrollmentResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<pb::RecoveryCodes>, Status> {
        let caller = caller(&request)?;
        let auth = Arc::clone(&self.auth);
        let issued = to_completion(async move {
            auth.own_credentials()
                .regenerate_recovery_codes(caller.acting())
                .await
        })
        .await?;
        Ok(Response::new(codes(issued)))
    }
}
