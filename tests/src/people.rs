//! People for end-to-end tests: a TOTP device whose codes come from Debian's
//! `oathtool` (an implementation independent of occcd's), and helpers that
//! take a person through bootstrap, invitation, enrolment and login over the
//! real socket.
//!
//! Invariant: every code a device hands out is for a later time step than
//! the previous one and within ±1 step of now, as a real app's would be.

use std::{
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use occc_client::{OcccClient, SessionToken, proto as pb};

use crate::DevDir;

/// A password that passes occcd's policy.
pub const GOOD_PASSWORD: &str = "violet-anchor-tundra-93";

/// An authenticator app, played by `oathtool`.
#[derive(Debug, Clone)]
pub struct TotpDevice {
    secret_base32: String,
    last_step: Option<i64>,
}

/// The current step and the milliseconds left in it.
#[allow(clippy::disallowed_methods)] // the daemon under test uses the real clock
fn current_step() -> (i64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let millis = u64::try_from(now.as_millis()).expect("millis fit");
    let step = i64::try_from(millis / 30_000).expect("step fits");
    (step, 30_000 - millis % 30_000)
}

/// The 6-digit code for `step`, computed by `oathtool`.
pub fn oathtool_code(secret_base32: &str, step: i64) -> String {
    let output = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "-N",
            &format!("@{}", step * 30),
            secret_base32,
        ])
        .output()
        .expect("oathtool runs (scripts/test installs it)");
    assert!(
        output.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("ascii")
        .trim()
        .to_owned()
}

impl TotpDevice {
    /// A device holding `secret_base32`.
    pub fn new(secret_base32: &str) -> Self {
        Self {
            secret_base32: secret_base32.to_owned(),
            last_step: None,
        }
    }

    /// The secret (to plant in log checks).
    pub fn secret(&self) -> &str {
        &self.secret_base32
    }

    /// A code for a step later than any handed out before.
    pub fn next_code(&mut self) -> String {
        self.code_from(false)
    }

    /// Like [`Self::next_code`], but never for the previous step: it stays
    /// good for 30 s at least, for a login that may have to wait its turn.
    pub fn next_lasting_code(&mut self) -> String {
        self.code_from(true)
    }

    fn code_from(&mut self, lasting: bool) -> String {
        loop {
            let (now, left_ms) = current_step();
            // The previous step is valid only until this one ends: use it only
            // with a margin, so the daemon still sees this step when checking.
            let earliest = if left_ms > 3_000 && !lasting {
                now - 1
            } else {
                now
            };
            let step = self
                .last_step
                .map_or(earliest, |last| (last + 1).max(earliest));
            if step <= now + 1 {
                self.last_step = Some(step);
                return oathtool_code(&self.secret_base32, step);
            }
            // Used up the skew window: wait for the next 30-second step.
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A code for the step last handed out (a replay).
    pub fn replay_last(&self) -> String {
        oathtool_code(
            &self.secret_base32,
            self.last_step.expect("a code was handed out"),
        )
    }
}

/// A person with an account.
#[derive(Debug, Clone)]
pub struct Person {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Their authenticator.
    pub device: TotpDevice,
    /// Recovery codes shown at enrolment.
    pub recovery_codes: Vec<String>,
}

/// Reads the bootstrap token the daemon wrote into its state folder.
pub fn bootstrap_token(dir: &DevDir) -> String {
    std::fs::read_to_string(dir.path().join("state").join("bootstrap.token"))
        .expect("bootstrap token file")
        .trim()
        .to_owned()
}

/// Creates the first super-admin through Bootstrap and ConfirmEnrollment.
pub async fn bootstrap_super_admin(dir: &DevDir, client: &OcccClient, username: &str) -> Person {
    let started = client
        .auth()
        .bootstrap(pb::BootstrapRequest {
            bootstrap_token: bootstrap_token(dir),
            username: username.to_owned(),
            password: GOOD_PASSWORD.to_owned(),
        })
        .await
        .expect("bootstrap")
        .into_inner();
    finish_enrollment(client, username, started).await
}

async fn finish_enrollment(
    client: &OcccClient,
    username: &str,
    mut started: pb::EnrollmentStarted,
) -> Person {
    let totp = started.totp.take().expect("TOTP enrolment");
    let mut device = TotpDevice::new(&totp.secret_base32);
    let codes = client
        .auth()
        .confirm_enrollment(pb::ConfirmEnrollmentRequest {
            enrollment_token: std::mem::take(&mut started.enrollment_token),
            totp_code: device.next_code(),
        })
        .await
        .expect("confirm enrolment")
        .into_inner();
    Person {
        username: username.to_owned(),
        password: GOOD_PASSWORD.to_owned(),
        device,
        recovery_codes: codes.codes.clone(),
    }
}

/// Logs `person` in; returns a client carrying the session.
pub async fn log_in(client: &OcccClient, person: &mut Person) -> OcccClient {
    let mut response = client
        .auth()
        .login(pb::LoginRequest {
            username: person.username.clone(),
            password: person.password.clone(),
            second_factor: Some(pb::login_request::SecondFactor::TotpCode(
                person.device.next_code(),
            )),
        })
        .await
        .expect("login")
        .into_inner();
    client.with_session(SessionToken::new(std::mem::take(
        &mut response.session_token,
    )))
}

/// Logs `person` in with one of their recovery codes (no TOTP step used).
pub async fn log_in_with_recovery_code(client: &OcccClient, person: &mut Person) -> OcccClient {
    let code = person.recovery_codes.pop().expect("a recovery code left");
    let mut response = client
        .auth()
        .login(pb::LoginRequest {
            username: person.username.clone(),
            password: person.password.clone(),
            second_factor: Some(pb::login_request::SecondFactor::RecoveryCode(code)),
        })
        .await
        .expect("login with a recovery code")
        .into_inner();
    client.with_session(SessionToken::new(std::mem::take(
        &mut response.session_token,
    )))
}

/// Elevates the session of `session_client` with a fresh code alone — an
/// elevation that may not change credentials or grant access.
pub async fn elevate_with_totp(session_client: &OcccClient, person: &mut Person) {
    session_client
        .auth()
        .elevate(pb::ElevateRequest {
            totp_code: person.device.next_code(),
            password: String::new(),
            recovery_code: String::new(),
        })
        .await
        .expect("elevate");
}

/// Elevates the session of `session_client` with the password and a fresh
/// code: the full re-authentication, which every sensitive RPC accepts.
pub async fn elevate(session_client: &OcccClient, person: &mut Person) {
    session_client
        .auth()
        .elevate(pb::ElevateRequest {
            totp_code: person.device.next_code(),
            password: person.password.clone(),
            recovery_code: String::new(),
        })
        .await
        .expect("elevate with password");
}

/// Elevates the session of `session_client` with the password and one of
/// the person's recovery codes (no TOTP step used): may change credentials.
pub async fn elevate_with_recovery_code(session_client: &OcccClient, person: &mut Person) {
    let code = person.recovery_codes.pop().expect("a recovery code left");
    session_client
        .auth()
        .elevate(pb::ElevateRequest {
            totp_code: String::new(),
            password: person.password.clone(),
            recovery_code: code,
        })
        .await
        .expect("elevate with password and a recovery code");
}

/// An elevated super-admin creates `username` with `role`; the person then
/// enrols themselves with the one-time token.
pub async fn invite(
    admin: &OcccClient,
    anonymous: &OcccClient,
    username: &str,
    role: pb::UserRole,
) -> Person {
    let created = admin
        .users()
        .create_user(pb::CreateUserRequest {
            username: username.to_owned(),
            role: role.into(),
        })
        .await
        .expect("create user")
        .into_inner();
    let started = anonymous
        .auth()
        .start_enrollment(pb::StartEnrollmentRequest {
            enrollment_token: created.enrollment_token.clone(),
            password: GOOD_PASSWORD.to_owned(),
        })
        .await
        .expect("start enrolment")
        .into_inner();
    finish_enrollment(anonymous, username, started).await
}

/// A daemon's first super-admin, signed in and elevated: where most tests
/// begin.
#[derive(Debug)]
pub struct SignedIn {
    /// A client without a session (to sign in again after a revocation).
    pub anonymous: OcccClient,
    /// The person, with their TOTP and recovery codes.
    pub person: Person,
    /// Their elevated session.
    pub session: OcccClient,
}

/// Bootstraps `daemon`'s first super-admin "root", signs in (with a
/// recovery code, so TOTP steps stay free for the test) and elevates.
pub async fn signed_in_super_admin(dir: &DevDir, daemon: &crate::RunningDaemon) -> SignedIn {
    let anonymous = daemon.client().await;
    let mut person = bootstrap_super_admin(dir, &anonymous, "root").await;
    let session = log_in_with_recovery_code(&anonymous, &mut person).await;
    elevate(&session, &mut person).await;
    SignedIn {
        anonymous,
        person,
        session,
    }
}
