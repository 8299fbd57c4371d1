//! `occc-peer`: a client the end-to-end tests run as *another OS user*, to
//! check what occcd does for one socket peer uid and not for another.
//!
//!     occc-peer <socket> flood-challenges <count>
//!     occc-peer <socket> login-methods <username>
//!     occc-peer <socket> device-login <username> <key id> <pkcs8 hex file>
//!     occc-peer <socket> pam-login <username>
//!     occc-peer <socket> create-user <username> <session token file>
//!     occc-peer <socket> enrol-and-use <username> <enrolment token> <password>
//!     occc-peer <socket> enrol-and-watch <username> <enrolment token> <password>
//!     occc-peer <socket> enrol-and-verify-chain <username> <enrolment token> <password>
//!     occc-peer <socket> hold-watches <session token file> <count>
//!     occc-peer <socket> enrol-and-hold <username> <enrolment token> <password> <audit> <integrity>
//!
//! `enrol-and-use` sets the password, confirms TOTP (codes computed here,
//! RFC 6238), logs in with a recovery code, calls WhoAmI and logs out; it
//! prints what it handled (`secret=… token=… codes=…`) for the test to look
//! for in the daemon's memory once this process — and its connection — is
//! gone. `enrol-and-watch` enrols and logs in the same way, then opens an
//! integrity watch and prints `ok watching` once the daemon accepted it
//! (a refused watch is an error before any message).
//! `enrol-and-verify-chain` enrols and logs in the same way, then calls
//! VerifyChain until it is not refused for want of a place (every 20 ms,
//! 60 s at most) and prints `ok verified <entries>`. `hold-watches` opens
//! `count` integrity watches on one connection with the session in the
//! file, prints `ok holding <count>`, and holds them until it is killed
//! (a test stops it to see what the daemon does with a silent peer).
//! `enrol-and-hold` enrols and logs in the same way, opens up to `audit`
//! audit watches and then up to `integrity` integrity watches, prints
//! `ok audit <n>` and `ok integrity <n>` — or, for a kind refused before its
//! count, the refusal (`error …`) — and holds what it got until killed.
//! Prints one line per result, `ok …` or `error <gRPC code name> …`, and
//! exits 0 unless the arguments are wrong; the tests read the lines.

use std::{path::PathBuf, process::ExitCode};

use occc_client::{
    ClientError, ConnectOptions, DeviceCredential, OcccClient, PamPrompter, SessionToken,
    SoftwareAuthenticator, proto as pb,
};
use zeroize::Zeroizing;

/// Shows nothing and answers no question (a fingerprint reader asks none).
struct Silent;

impl PamPrompter for Silent {
    fn show(&self, _text: &str, _error: bool) {}

    fn ask(&self, _question: &str, _hidden: bool) -> Result<Zeroizing<String>, ClientError> {
        Err(ClientError::Rpc(tonic::Status::cancelled(
            "no answers here",
        )))
    }
}

fn report<T>(result: Result<T, ClientError>, ok: impl FnOnce(T) -> String) {
    match result {
        Ok(value) => println!("ok {}", ok(value)),
        Err(ClientError::Rpc(status)) => {
            println!("error {:?} {}", status.code(), status.message());
        }
        Err(other) => println!("error Client {other}"),
    }
}

async fn run(socket: PathBuf, command: &[String]) -> Result<(), String> {
    let options = ConnectOptions {
        socket_path: socket,
        expected_owner_uid: 0,
    };
    let client = OcccClient::connect(&options)
        .await
        .map_err(|err| err.to_string())?;
    match command {
        [cmd, count] if cmd == "flood-challenges" => {
            let count: usize = count.parse().map_err(|_| "count: a number")?;
            let (mut issued, mut refused) = (0, 0);
            for i in 0..count {
                let request = pb::CreateLoginChallengeRequest {
                    username: format!("flood{}", i % 500),
                };
                match client.device_keys().create_login_challenge(request).await {
                    Ok(_) => issued += 1,
                    Err(_) => refused += 1,
                }
            }
            println!("ok issued={issued} refused={refused}");
        }
        [cmd, username] if cmd == "login-methods" => {
            let request = pb::GetLoginMethodsRequest {
                username: username.clone(),
            };
            let result = client.device_keys().get_login_methods(request).await;
            report(result.map_err(ClientError::from), |methods| {
                let names: Vec<&str> = methods
                    .into_inner()
                    .methods()
                    .map(|m| m.as_str_name())
                    .collect();
                names.join(",")
            });
        }
        [cmd, username, key_id, pkcs8_file] if cmd == "device-login" => {
            let hex = std::fs::read_to_string(pkcs8_file).map_err(|err| err.to_string())?;
            let pkcs8: Vec<u8> = (0..hex.trim().len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            let key = SoftwareAuthenticator::from_pkcs8(&pkcs8).map_err(|err| err.to_string())?;
            let device = DeviceCredential {
                key_id,
                authenticator: &key,
            };
            report(
                client.login_with_device_key(username, &device).await,
                |_| "logged in".to_owned(),
            );
        }
        [cmd, username] if cmd == "pam-login" => {
            report(client.login_with_pam(username, &Silent).await, |_| {
                "logged in".to_owned()
            });
        }
        [cmd, username, token_file] if cmd == "create-user" => {
            let token = std::fs::read_to_string(token_file).map_err(|err| err.to_string())?;
            let admin = client.with_session(SessionToken::new(token.trim().to_owned()));
            let request = pb::CreateUserRequest {
                username: username.clone(),
                role: pb::UserRole::Viewer.into(),
            };
            let result = admin.users().create_user(request).await;
            report(result.map_err(ClientError::from), |created| {
                created.into_inner().enrollment_token.clone()
            });
        }
        [cmd, username, enrollment_token, password] if cmd == "enrol-and-use" => {
            let used = enrol_and_use(&client, username, enrollment_token, password).await;
            report(used, |line| line);
        }
        [cmd, username, enrollment_token, password] if cmd == "enrol-and-watch" => {
            let watched = enrol_and_watch(&client, username, enrollment_token, password).await;
            report(watched, |()| "watching".to_owned());
        }
        [cmd, username, enrollment_token, password] if cmd == "enrol-and-verify-chain" => {
            let verified = enrol_and_verify(&client, username, enrollment_token, password).await;
            report(verified, |entries| format!("verified {entries}"));
        }
        [cmd, token_file, count] if cmd == "hold-watches" => {
            let token = std::fs::read_to_string(token_file).map_err(|err| err.to_string())?;
            let count: usize = count.parse().map_err(|_| "count: a number".to_owned())?;
            let session = client.with_session(SessionToken::new(token.trim().to_owned()));
            let mut held = Vec::new();
            while held.len() < count {
                match session
                    .integrity()
                    .watch_integrity(pb::WatchIntegrityRequest {})
                    .await
                {
                    Ok(watch) => held.push(watch.into_inner()),
                    Err(status) => {
                        report(Err::<(), _>(ClientError::Rpc(status)), |()| String::new());
                        return Ok(());
                    }
                }
            }
            println!("ok holding {}", held.len());
            std::future::pending::<()>().await;
        }
        [cmd, username, enrollment_token, password, audit, integrity]
            if cmd == "enrol-and-hold" =>
        {
            let counts = |count: &String| count.parse::<usize>().map_err(|_| "counts: numbers");
            let (audit, integrity) = (counts(audit)?, counts(integrity)?);
            let session =
                match enrol_and_log_in(&client, username, enrollment_token, password).await {
                    Ok((session, ..)) => session,
                    Err(err) => {
                        report(Err::<(), _>(err), |()| String::new());
                        return Ok(());
                    }
                };
            let audit_watches = hold("audit", audit, || async {
                let mut watch = session.audit();
                watch.watch_audit(pb::WatchAuditRequest::default()).await
            })
            .await;
            let integrity_watches = hold("integrity", integrity, || async {
                let mut watch = session.integrity();
                watch.watch_integrity(pb::WatchIntegrityRequest {}).await
            })
            .await;
            let _held = (audit_watches, integrity_watches);
            std::future::pending::<()>().await;
        }
        _ => return Err("unknown command; see the source's header".to_owned()),
    }
    Ok(())
}

/// Streams `open` gave, until `count` or its first refusal; prints
/// `ok <kind> <n>`, or the refusal.
async fn hold<T, Opened>(kind: &str, count: usize, open: impl Fn() -> Opened) -> Vec<T>
where
    Opened: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut held = Vec::new();
    while held.len() < count {
        match open().await {
            Ok(stream) => held.push(stream.into_inner()),
            Err(status) => {
                report(Err::<(), _>(ClientError::Rpc(status)), |()| String::new());
                return held;
            }
        }
    }
    println!("ok {kind} {}", held.len());
    held
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of `secret_base32` for `step`.
fn totp(secret_base32: &str, step: u64) -> Result<String, ClientError> {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_base32.trim_end_matches('=').as_bytes())
        .map_err(|err| ClientError::Rpc(tonic::Status::internal(err.to_string())))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Ok(format!("{:06}", value % 1_000_000))
}

/// A session of `username`, enrolled with `enrollment_token`, and what
/// it handled: the TOTP secret, the session token, the recovery codes.
async fn enrol_and_log_in(
    client: &OcccClient,
    username: &str,
    enrollment_token: &str,
    password: &str,
) -> Result<(OcccClient, String, String, Vec<String>), ClientError> {
    let mut started = client
        .auth()
        .start_enrollment(pb::StartEnrollmentRequest {
            enrollment_token: enrollment_token.to_owned(),
            password: password.to_owned(),
        })
        .await?
        .into_inner();
    let secret = started
        .totp
        .take()
        .map(|totp| totp.secret_base32.clone())
        .unwrap_or_default();
    #[allow(clippy::disallowed_methods)] // the daemon checks codes against the real clock
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let codes = client
        .auth()
        .confirm_enrollment(pb::ConfirmEnrollmentRequest {
            enrollment_token: enrollment_token.to_owned(),
            totp_code: totp(&secret, now / 30)?,
        })
        .await?
        .into_inner()
        .codes
        .clone();
    let mut login = client
        .auth()
        .login(pb::LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            second_factor: Some(pb::login_request::SecondFactor::RecoveryCode(
                codes.first().cloned().unwrap_or_default(),
            )),
        })
        .await?
        .into_inner();
    let token = std::mem::take(&mut login.session_token);
    let session = client.with_session(SessionToken::new(token.clone()));
    Ok((session, secret, token, codes))
}

async fn enrol_and_use(
    client: &OcccClient,
    username: &str,
    enrollment_token: &str,
    password: &str,
) -> Result<String, ClientError> {
    let (session, secret, token, codes) =
        enrol_and_log_in(client, username, enrollment_token, password).await?;
    session.auth().who_am_i(pb::WhoAmIRequest {}).await?;
    session.auth().logout(pb::LogoutRequest {}).await?;
    Ok(format!(
        "secret={secret} token={token} codes={}",
        codes.join(",")
    ))
}

async fn enrol_and_watch(
    client: &OcccClient,
    username: &str,
    enrollment_token: &str,
    password: &str,
) -> Result<(), ClientError> {
    let (session, ..) = enrol_and_log_in(client, username, enrollment_token, password).await?;
    let mut watch = session
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await?
        .into_inner();
    // No container is watched here: the stream is open once its headers
    // came; a first message, if any, is taken too.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), watch.message()).await;
    Ok(())
}

async fn enrol_and_verify(
    client: &OcccClient,
    username: &str,
    enrollment_token: &str,
    password: &str,
) -> Result<u64, ClientError> {
    let (session, ..) = enrol_and_log_in(client, username, enrollment_token, password).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match session.verify_audit_chain().await {
            Err(ClientError::Rpc(status))
                if status.code() == tonic::Code::ResourceExhausted
                    && tokio::time::Instant::now() < deadline =>
            {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_millis(20),
                    std::future::pending::<()>(),
                )
                .await;
            }
            other => return other.map(|report| report.entries_checked),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((socket, command)) = args.split_first() else {
        eprintln!("usage: occc-peer <socket> <command> …");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(socket), command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("occc-peer: {err}");
            ExitCode::from(2)
        }
    }
}
