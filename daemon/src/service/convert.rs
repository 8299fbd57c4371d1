//! Domain values to and from their `occc.v1` messages.
//!
//! Invariant: the only place that knows both the domain types and the proto
//! types; an unspecified enum from a client is an error, never a default.

use occc_proto::v1 as pb;
use tonic::{Request, Status};

use crate::{
    auth::{
        LoginOutcome, UserProfile, UserState,
        role::Role,
        sessions::{Session, SessionStore},
        totp::TotpEnrolment,
    },
    gate::Caller,
    transport::PeerCredentials,
};

/// The admitted caller of a session-only RPC.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("this call needs a logged-in session"))
}

/// The socket peer of any admitted call.
pub fn peer<T>(request: &Request<T>) -> Result<PeerCredentials, Status> {
    request
        .extensions()
        .get::<PeerCredentials>()
        .copied()
        .ok_or_else(|| Status::unauthenticated("the connection has no peer credentials"))
}

/// Proto role of a domain role.
#[must_use]
pub fn role_to_proto(role: Role) -> pb::UserRole {
    match role {
        Role::Viewer => pb::UserRole::Viewer,
        Role::Operator => pb::UserRole::Operator,
        Role::Admin => pb::UserRole::Admin,
        Role::SuperAdmin => pb::UserRole::SuperAdmin,
    }
}

/// Domain role of a proto role number.
pub fn role_from_proto(value: i32) -> Result<Role, Status> {
    match pb::UserRole::try_from(value) {
        Ok(pb::UserRole::Viewer) => Ok(Role::Viewer),
        Ok(pb::UserRole::Operator) => Ok(Role::Operator),
        Ok(pb::UserRole::Admin) => Ok(Role::Admin),
        Ok(pb::UserRole::SuperAdmin) => Ok(Role::SuperAdmin),
        Ok(pb::UserRole::Unspecified) | Err(_) => Err(Status::invalid_argument(
            "role: choose USER_ROLE_VIEWER, USER_ROLE_OPERATOR, USER_ROLE_ADMIN or USER_ROLE_SUPER_ADMIN",
        )),
    }
}

/// Proto profile of a domain profile.
#[must_use]
pub fn profile_to_proto(profile: &UserProfile) -> pb::UserProfile {
    let state = match profile.state {
        UserState::Enrolling => pb::UserState::Enrolling,
        UserState::Active => pb::UserState::Active,
        UserState::Disabled => pb::UserState::Disabled,
    };
    pb::UserProfile {
        id: profile.id,
        username: profile.username.clone(),
        role: role_to_proto(profile.role).into(),
        state: state.into(),
        created_at_unix_ms: profile.created_at.0,
        recovery_codes_left: profile.recovery_codes_left,
        locked_until_unix_ms: profile.locked_until.map(|u| u.0),
        os_account: profile.os_account.clone(),
    }
}

/// Proto session of a domain session.
#[must_use]
pub fn session_to_proto(
    session: &Session,
    store: &SessionStore,
    current_id: Option<&str>,
) -> pb::AuthSession {
    let (idle_end, lifetime_end) = store.expiries(session);
    pb::AuthSession {
        session_id: session.id.clone(),
        username: session.username.clone(),
        role: role_to_proto(session.role).into(),
        peer_uid: session.peer_uid,
        created_at_unix_ms: session.created_at.0,
        last_seen_unix_ms: session.last_seen.0,
        idle_expires_at_unix_ms: idle_end.0,
        expires_at_unix_ms: lifetime_end.0,
        elevated_until_unix_ms: session.elevated_until().map(|u| u.0),
        current: current_id == Some(session.id.as_str()),
        elevation_method: session
            .elevation
            .as_ref()
            .map(|e| e.method.name())
            .unwrap_or_default(),
    }
}

/// Proto TOTP enrolment.
#[must_use]
pub fn enrolment_to_proto(enrolment: &TotpEnrolment) -> pb::TotpEnrollment {
    pb::TotpEnrollment {
        otpauth_uri: enrolment.otpauth_uri.to_string(),
        qr_png: enrolment.qr_png.to_vec(),
        secret_base32: enrolment.secret_base32.to_string(),
    }
}

/// The answer to a successful login, whatever the method.
#[must_use]
pub fn login_response(outcome: &LoginOutcome, sessions: &SessionStore) -> pb::LoginResponse {
    pb::LoginResponse {
        session_token: outcome.token.expose().to_owned(),
        session: Some(session_to_proto(
            &outcome.session,
            sessions,
            Some(&outcome.session.id),
        )),
        user: Some(profile_to_proto(&outcome.user)),
    }
}

/// Runs `work` to its end even if the client goes away or its deadline
/// passes: a change and the session revocations it implies are never split
/// by a cancelled call.
pub async fn to_completion<T, E, W>(work: W) -> Result<T, Status>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
    W: Future<Output = Result<T, E>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(outcome) => outcome.map_err(Into::into),
        Err(join) => {
            tracing::error!(error = %join, "account change task failed");
            Err(Status::internal("the change failed; see the daemon's log"))
        }
    }
}
