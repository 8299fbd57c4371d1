//! `occcctl bootstrap | enroll | login | logout | whoami`.

use std::{io::BufRead, path::Path};

use occc_client::{ClientError, OcccClient, SessionToken, proto as pb};
use qrcode::{QrCode, render::unicode};
use zeroize::Zeroizing;

use crate::token_file;

/// Reads a secret: from stdin when piped, else at a hidden prompt.
fn secret(prompt: &str, from_stdin: bool) -> Result<Zeroizing<String>, ClientError> {
    let io = |err: std::io::Error| ClientError::Connect {
        socket: Default::default(),
        message: format!("cannot read {prompt}: {err}"),
    };
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        Ok(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        rpassword::prompt_password(format!("{prompt}: "))
            .map(Zeroizing::new)
            .map_err(io)
    }
}

fn line(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}: ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| ClientError::Connect {
            socket: Default::default(),
            message: format!("cannot read {prompt}: {err}"),
        })?;
    Ok(answer.trim().to_owned())
}

/// Shows the TOTP enrolment as a terminal QR code plus the manual key.
fn show_enrollment(totp: &pb::TotpEnrollment) {
    match QrCode::new(totp.otpauth_uri.as_bytes()) {
        Ok(code) => eprintln!(
            "{}",
            code.render::<unicode::Dense1x2>().quiet_zone(true).build()
        ),
        Err(err) => eprintln!("(cannot draw the QR code: {err})"),
    }
    eprintln!(
        "Scan this with your authenticator app, or enter the key by hand:\n  {}",
        totp.secret_base32
    );
}

async fn confirm(client: &OcccClient, started: pb::EnrollmentStarted) -> Result<(), ClientError> {
    if let Some(totp) = &started.totp {
        show_enrollment(totp);
    }
    let code = line("6-digit code from the app")?;
    let codes = client
        .auth()
        .confirm_enrollment(pb::ConfirmEnrollmentRequest {
            enrollment_token: started.enrollment_token,
            totp_code: code,
        })
        .await?
        .into_inner();
    println!("Your account is active. Recovery codes — each works once; store them offline now:");
    for code in codes.codes {
        println!("  {code}");
    }
    Ok(())
}

/// First run: create the first super-admin.
pub async fn bootstrap(
    client: &OcccClient,
    token_file: &Path,
    username: &str,
    stdin: bool,
) -> Result<(), ClientError> {
    let token = std::fs::read_to_string(token_file).map_err(|err| ClientError::Connect {
        socket: token_file.to_owned(),
        message: format!("cannot read the bootstrap token file: {err} (run as root?)"),
    })?;
    let password = secret("new password (12+ characters)", stdin)?;
    let started = client
        .auth()
        .bootstrap(pb::BootstrapRequest {
            bootstrap_token: token.trim().to_owned(),
            username: username.to_owned(),
            password: password.to_string(),
        })
        .await?
        .into_inner();
    confirm(client, started).await
}

/// An invited person sets up their account.
pub async fn enroll(
    client: &OcccClient,
    enrollment_token: &str,
    stdin: bool,
) -> Result<(), ClientError> {
    let password = secret("new password (12+ characters)", stdin)?;
    let started = client
        .auth()
        .start_enrollment(pb::StartEnrollmentRequest {
            enrollment_token: enrollment_token.to_owned(),
            password: password.to_string(),
        })
        .await?
        .into_inner();
    confirm(client, started).await
}

/// Logs in and saves the session token.
pub async fn login(
    client: &OcccClient,
    username: &str,
    recovery: bool,
    stdin: bool,
) -> Result<pb::LoginResponse, ClientError> {
    let password = secret("password", stdin)?;
    let factor = if recovery {
        pb::login_request::SecondFactor::RecoveryCode(secret("recovery code", stdin)?.to_string())
    } else {
        pb::login_request::SecondFactor::TotpCode(secret("6-digit code", stdin)?.to_string())
    };
    let response = client
        .auth()
        .login(pb::LoginRequest {
            username: username.to_owned(),
            password: password.to_string(),
            second_factor: Some(factor),
        })
        .await?
        .into_inner();
    let token = SessionToken::new(response.session_token.clone());
    if let Err(err) = token_file::save(&token) {
        eprintln!("occcctl: logged in, but the token could not be saved: {err}");
    }
    Ok(pb::LoginResponse {
        session_token: String::new(),
        ..response
    })
}

/// Ends the saved session.
pub async fn logout(client: &OcccClient) -> Result<(), ClientError> {
    client.auth().logout(pb::LogoutRequest {}).await?;
    token_file::forget();
    Ok(())
}

/// Who the saved session belongs to.
pub async fn whoami(client: &OcccClient) -> Result<pb::WhoAmIResponse, ClientError> {
    Ok(client
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await?
        .into_inner())
}
