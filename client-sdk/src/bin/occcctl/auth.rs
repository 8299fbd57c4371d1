//! `occcctl bootstrap | enroll | login | logout | whoami`.

use std::{path::Path, time::Duration};

use occc_client::{
    Biometrics, ClientError, DeviceCredential, OcccClient, PamPrompter, SessionToken,
    SoftwareAuthenticator, proto as pb,
};
use qrcode::{QrCode, render::unicode};
use zeroize::Zeroizing;

use crate::{
    key_file,
    prompt::{line, new_password, secret, with_spinner},
    token_file,
};

/// Relays a PAM stack's messages and questions to the terminal.
struct TerminalPrompter;

impl PamPrompter for TerminalPrompter {
    fn show(&self, text: &str, error: bool) {
        if error {
            eprintln!("occcctl: {text}");
        } else {
            eprintln!("{text}");
        }
    }

    fn ask(&self, question: &str, hidden: bool) -> Result<Zeroizing<String>, ClientError> {
        let question = question.trim_end().trim_end_matches(':');
        if hidden {
            secret(question, false)
        } else {
            line(question).map(Zeroizing::new)
        }
    }
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

/// Tries a person gets for the first TOTP code before the enrolment is left
/// for later (it stays valid: `occcctl enroll` again).
const CODE_TRIES: usize = 3;

async fn confirm(
    client: &OcccClient,
    mut started: pb::EnrollmentStarted,
) -> Result<(), ClientError> {
    if let Some(totp) = &started.totp {
        show_enrollment(totp);
    }
    let token = Zeroizing::new(std::mem::take(&mut started.enrollment_token));
    let mut tries = 0;
    let codes = loop {
        tries += 1;
        let code = line("6-digit code from the app")?;
        let request = pb::ConfirmEnrollmentRequest {
            enrollment_token: token.to_string(),
            totp_code: code,
        };
        let answer = with_spinner("checking", client.auth().confirm_enrollment(request)).await;
        match answer {
            Ok(codes) => break codes.into_inner(),
            Err(status) if tries < CODE_TRIES && retryable_code(&status) => {
                let wait = retry_after(&status);
                eprintln!(
                    "{}; try the next code ({} left)",
                    status.message(),
                    CODE_TRIES - tries
                );
                if let Some(wait) = wait {
                    with_spinner("waiting", tokio::time::sleep(wait)).await;
                }
            }
            Err(status) => return Err(status.into()),
        }
    };
    println!("Your account is active. Recovery codes — each works once; store them offline now:");
    for code in &codes.codes {
        println!("  {code}");
    }
    Ok(())
}

/// A wrong or mistyped code, or a short brute-force delay: worth asking again.
fn retryable_code(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unauthenticated | tonic::Code::InvalidArgument
    ) || crate::elevate::denial(status) == Some("throttled")
}

fn retry_after(status: &tonic::Status) -> Option<Duration> {
    status
        .metadata()
        .get("occc-retry-after-ms")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .map(Duration::from_millis)
}

/// First run: create the first super-admin.
pub async fn bootstrap(
    client: &OcccClient,
    token_file: &Path,
    username: &str,
    stdin: bool,
) -> Result<(), ClientError> {
    let token = std::fs::read_to_string(token_file).map_err(|err| {
        ClientError::Input(format!(
            "cannot read the bootstrap token file {}: {err} (run as root?)",
            token_file.display()
        ))
    })?;
    let password = new_password(stdin)?;
    let request = pb::BootstrapRequest {
        bootstrap_token: token.trim().to_owned(),
        username: username.to_owned(),
        password: password.to_string(),
    };
    let started = with_spinner("creating the account", client.auth().bootstrap(request))
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
    let password = new_password(stdin)?;
    let request = pb::StartEnrollmentRequest {
        enrollment_token: enrollment_token.to_owned(),
        password: password.to_string(),
    };
    let started = with_spinner(
        "setting the password",
        client.auth().start_enrollment(request),
    )
    .await?
    .into_inner();
    confirm(client, started).await
}

fn io_error(message: String) -> ClientError {
    ClientError::Input(message)
}

/// The passphrase of the device key: from `$OCCC_KEY_PASSPHRASE_FILE`, else
/// at a hidden prompt when `interactive`.
fn key_passphrase(
    prompt: &str,
    interactive: bool,
) -> Option<Result<Zeroizing<String>, ClientError>> {
    if let Some(from_file) = key_file::passphrase_from_env() {
        return Some(from_file.map_err(|err| io_error(err.to_string())));
    }
    interactive.then(|| secret(prompt, false))
}

/// The saved device key, if there is one and its passphrase opens it.
fn saved_device_key(interactive: bool) -> Option<(String, SoftwareAuthenticator)> {
    if !key_file::exists() {
        return None;
    }
    let passphrase = match key_passphrase("device key passphrase", interactive)? {
        Ok(passphrase) => passphrase,
        Err(err) => {
            eprintln!("occcctl: {err}; skipping the device key");
            return None;
        }
    };
    match key_file::open(&passphrase) {
        Ok(opened) => Some(opened),
        Err(err) => {
            eprintln!("occcctl: {err}; skipping the device key");
            None
        }
    }
}

/// How `occcctl elevate` re-proves the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevateWith {
    /// A TOTP code.
    Totp,
    /// The password and a TOTP code (needed to change credentials).
    PasswordAndTotp,
    /// The host's PAM stack.
    Pam,
}

/// Elevates the saved session.
pub async fn elevate(
    client: &OcccClient,
    stdin: bool,
    with: ElevateWith,
) -> Result<pb::AuthSession, ClientError> {
    let password = match with {
        ElevateWith::Pam => return client.elevate_with_pam(&TerminalPrompter).await,
        ElevateWith::Totp => None,
        ElevateWith::PasswordAndTotp => Some(secret("password", stdin)?),
    };
    let code = secret("6-digit code", stdin)?;
    let request = pb::ElevateRequest {
        totp_code: code.to_string(),
        password: password.map(|p| p.to_string()).unwrap_or_default(),
        recovery_code: String::new(),
    };
    Ok(
        with_spinner("re-authenticating", client.auth().elevate(request))
            .await?
            .into_inner(),
    )
}

/// Creates a software device key, registers it (the session must be elevated
/// with the password) and saves it sealed under a passphrase.
pub async fn register_device_key(
    client: &OcccClient,
    name: &str,
) -> Result<(pb::DeviceKey, std::path::PathBuf), ClientError> {
    let passphrase = key_passphrase(
        &format!(
            "passphrase to protect the key on this machine ({}+ characters)",
            key_file::MIN_PASSPHRASE_CHARS
        ),
        true,
    )
    .unwrap_or_else(|| Err(io_error("no passphrase".to_owned())))?;
    if passphrase.chars().count() < key_file::MIN_PASSPHRASE_CHARS {
        return Err(io_error(key_file::KeyFileError::WeakPassphrase.to_string()));
    }
    let key = SoftwareAuthenticator::generate()
        .map_err(|err| ClientError::Rpc(tonic::Status::internal(err.to_string())))?;
    let registered = client.register_device_key(name, &key).await?;
    let saved = key_file::save(&registered.key_id, &key, &passphrase)
        .map_err(|err| io_error(format!("key registered but not saved: {err}")))?;
    Ok((registered, saved))
}

/// Logs in through the chain: the saved device key, then the host's PAM
/// stack (interactive only) if occcd offers them, else password + TOTP;
/// saves the session token.
pub async fn login_chain(
    client: &OcccClient,
    username: &str,
    stdin: bool,
) -> Result<(OcccClient, pb::LoginMethod), ClientError> {
    let saved = saved_device_key(!stdin);
    let device = saved.as_ref().map(|(key_id, key)| DeviceCredential {
        key_id,
        authenticator: key,
    });
    let biometrics = Biometrics {
        device: device.as_ref(),
        pam: (!stdin).then_some(&TerminalPrompter as &dyn PamPrompter),
    };
    // No spinner: the chain may ask questions (PAM, password) while it runs.
    let (session, method) = client
        .login_chain(username, biometrics, || {
            let password = secret("password", stdin)?;
            let code = secret("6-digit code", stdin)?;
            Ok((password.to_string(), code.to_string()))
        })
        .await?;
    if let Some(token) = session.session()
        && let Err(err) = token_file::save(token)
    {
        eprintln!("occcctl: logged in, but the token could not be saved: {err}");
    }
    Ok((session, method))
}

/// Logs in with password and a TOTP or recovery code; saves the session
/// token and returns who logged in.
pub async fn login(
    client: &OcccClient,
    username: &str,
    recovery: bool,
    stdin: bool,
) -> Result<pb::UserProfile, ClientError> {
    let password = secret("password", stdin)?;
    let factor = if recovery {
        pb::login_request::SecondFactor::RecoveryCode(secret("recovery code", stdin)?.to_string())
    } else {
        pb::login_request::SecondFactor::TotpCode(secret("6-digit code", stdin)?.to_string())
    };
    let request = pb::LoginRequest {
        username: username.to_owned(),
        password: password.to_string(),
        second_factor: Some(factor),
    };
    let mut response = with_spinner("logging in", client.auth().login(request))
        .await?
        .into_inner();
    let token = SessionToken::new(std::mem::take(&mut response.session_token));
    if let Err(err) = token_file::save(&token) {
        eprintln!("occcctl: logged in, but the token could not be saved: {err}");
    }
    Ok(response.user.take().unwrap_or_default())
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
