//! Every request message, answered in-process: the first byte picks a row of
//! the policy table (every RPC occcd serves), the second who calls — nobody,
//! a token no session has, an elevated super-admin or an elevated admin (the
//! domain decides some things between those two) — and the rest is the
//! message's bytes, framed as gRPC and passed through the gate and the
//! handler ([`occcd::lifecycle::InProcess`]: no socket) on a real SQLCipher
//! store in a temporary folder, with the clock injected.
//!
//! Besides a panic or a hang, an answer of INTERNAL or UNKNOWN is a failure:
//! bad input must get a status a person can act on. The daemon is started
//! again every [`INPUTS_PER_DAEMON`] inputs (so its store stays small) and
//! whenever the fuzzer took a signed-in user away for good (locked out,
//! disabled, deleted, demoted, a changed password), so later inputs still
//! reach the handlers.

mod grpc;

use std::{
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use occc_proto::v1 as pb;
use occcd::{
    clock::{Clock, ManualClock, SystemClock},
    config::Config,
    gate::POLICY_TABLE,
    lifecycle::InProcess,
};

use grpc::Answer;

/// Inputs one daemon answers before a fresh one replaces it.
const INPUTS_PER_DAEMON: u32 = 20_000;
/// The first super-admin, and the admin it invites.
const SUPER_ADMIN: &str = "fuzz-root";
const ADMIN: &str = "fuzz-admin";
/// Their password (passes occcd's policy).
const PASSWORD: &str = "violet-anchor-tundra-93";
/// One TOTP step: the clock moves this far before each code, so no code is
/// a replay of the last.
const TOTP_STEP: Duration = Duration::from_secs(30);

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No `authorization` header.
    Nobody,
    /// A bearer token no session has.
    Stranger,
    /// A signed-in user, elevated with the password: index into
    /// [`Daemon::users`] (0 the super-admin, 1 the admin).
    User(usize),
}

/// The message bytes after the two selector bytes.
pub fn requests(data: &[u8]) {
    let Some(([rpc, who], message)) = data.split_first_chunk::<2>() else {
        return;
    };
    let path = POLICY_TABLE[usize::from(*rpc) % POLICY_TABLE.len()].path;
    let who = match who % 4 {
        0 => Who::Nobody,
        1 => Who::Stranger,
        2 => Who::User(0),
        _ => Who::User(1),
    };
    let harness = HARNESS.get_or_init(|| Mutex::new(None));
    let mut slot = harness.lock().unwrap_or_else(PoisonError::into_inner);
    let daemon = slot.get_or_insert_with(Daemon::start);
    let answer = daemon.answer(path, who, message);
    if *TRACE {
        eprintln!("requests: {path} as {who:?}: {answer}");
    }
    if answer.is_internal() {
        fail(&format!("{path} answered {answer} to bad input"));
    }
    daemon.inputs += 1;
    let keeps_going = match (who, answer.denial()) {
        (_, _) if daemon.inputs >= INPUTS_PER_DAEMON => false,
        // The session ended or its elevation did: sign in again.
        (
            Who::User(user),
            "login-required" | "elevation-required" | "password-elevation-required",
        ) => daemon.sign_in(user),
        // A super-admin is never forbidden anything: it was demoted.
        (Who::User(0), "forbidden") => false,
        _ => true,
    };
    if !keeps_going && let Some(old) = slot.take() {
        old.stop();
    }
}

static HARNESS: OnceLock<Mutex<Option<Daemon>>> = OnceLock::new();

/// `OCCC_FUZZ_TRACE=1`: print each call and its answer (to see what the
/// seeds reach).
static TRACE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("OCCC_FUZZ_TRACE").is_some_and(|v| v == "1"));

/// A fuzz target reports a failure by panicking.
#[allow(clippy::panic)]
fn fail(why: &str) -> ! {
    panic!("requests: {why}")
}

/// A signed-in user of the harness.
struct User {
    username: &'static str,
    totp_secret: Vec<u8>,
    token: String,
}

/// One in-process daemon and its signed-in users.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    daemon: InProcess,
    users: Vec<User>,
    inputs: u32,
    /// Removed last (after the daemon closed its store).
    folder: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon on a fresh folder, bootstraps the super-admin, has it
    /// invite the admin, and signs both in, elevated with the password.
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|err| fail(&format!("no runtime: {err}")));
        let folder = tempfile::Builder::new()
            .prefix("occcd-fuzz-requests-")
            .tempdir()
            .unwrap_or_else(|err| fail(&format!("no temporary folder: {err}")));
        let config = config_in(folder.path());
        let clock = Arc::new(ManualClock::starting_at(SystemClock.now()));
        let shared: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
        let daemon = runtime
            .block_on(InProcess::start(&config, shared))
            .unwrap_or_else(|err| fail(&format!("the daemon did not start: {err}")));
        let mut harness = Self {
            runtime,
            clock,
            daemon,
            users: Vec::new(),
            inputs: 0,
            folder,
        };
        harness.bootstrap();
        harness.invite_admin();
        for user in 0..harness.users.len() {
            if !harness.sign_in(user) {
                fail("a user the harness enrolled could not sign in");
            }
        }
        harness
    }

    /// Creates the first super-admin with the token the daemon wrote.
    fn bootstrap(&mut self) {
        let token_file = self.folder.path().join("state").join("bootstrap.token");
        let token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|err| fail(&format!("no bootstrap token: {err}")));
        let started: pb::EnrollmentStarted = self
            .unary(
                "/occc.v1.Auth/Bootstrap",
                Who::Nobody,
                &pb::BootstrapRequest {
                    bootstrap_token: token.trim().to_owned(),
                    username: SUPER_ADMIN.to_owned(),
                    password: PASSWORD.to_owned(),
                },
            )
            .unwrap_or_else(|answer| fail(&format!("Bootstrap: {answer}")));
        self.confirm_enrollment(SUPER_ADMIN, started);
    }

    /// The super-admin (signed in) creates the admin, who enrols.
    fn invite_admin(&mut self) {
        if !self.sign_in(0) {
            fail("the bootstrapped super-admin could not sign in");
        }
        let mut created: pb::CreateUserResponse = self
            .unary(
                "/occc.v1.Users/CreateUser",
                Who::User(0),
                &pb::CreateUserRequest {
                    username: ADMIN.to_owned(),
                    role: pb::UserRole::Admin.into(),
                },
            )
            .unwrap_or_else(|answer| fail(&format!("CreateUser: {answer}")));
        let started: pb::EnrollmentStarted = self
            .unary(
                "/occc.v1.Auth/StartEnrollment",
                Who::Nobody,
                &pb::StartEnrollmentRequest {
                    enrollment_token: std::mem::take(&mut created.enrollment_token),
                    password: PASSWORD.to_owned(),
                },
            )
            .unwrap_or_else(|answer| fail(&format!("StartEnrollment: {answer}")));
        self.confirm_enrollment(ADMIN, started);
    }

    /// Confirms `username`'s TOTP enrolment and adds them to the users.
    fn confirm_enrollment(&mut self, username: &'static str, mut started: pb::EnrollmentStarted) {
        let secret = started
            .totp
            .as_mut()
            .map(|totp| std::mem::take(&mut totp.secret_base32))
            .unwrap_or_default();
        let totp_secret = totp_rs::Secret::Encoded(secret)
            .to_bytes()
            .unwrap_or_else(|err| fail(&format!("the TOTP secret is not base32: {err:?}")));
        let code = self.next_code(&totp_secret, username);
        let _: pb::RecoveryCodes = self
            .unary(
                "/occc.v1.Auth/ConfirmEnrollment",
                Who::Nobody,
                &pb::ConfirmEnrollmentRequest {
                    enrollment_token: std::mem::take(&mut started.enrollment_token),
                    totp_code: code,
                },
            )
            .unwrap_or_else(|answer| fail(&format!("ConfirmEnrollment: {answer}")));
        self.users.push(User {
            username,
            totp_secret,
            token: String::new(),
        });
    }

    /// Logs user `index` in and elevates with the password; false if the
    /// fuzzer made that impossible (lockout, disabled, deleted, a changed
    /// password).
    fn sign_in(&mut self, index: usize) -> bool {
        let Some(user) = self.users.get(index) else {
            return false;
        };
        let (username, secret) = (user.username, user.totp_secret.clone());
        let code = self.next_code(&secret, username);
        let login: Result<pb::LoginResponse, Answer> = self.unary(
            "/occc.v1.Auth/Login",
            Who::Nobody,
            &pb::LoginRequest {
                username: username.to_owned(),
                password: PASSWORD.to_owned(),
                second_factor: Some(pb::login_request::SecondFactor::TotpCode(code)),
            },
        );
        let Ok(mut login) = login else {
            return false;
        };
        if let Some(user) = self.users.get_mut(index) {
            user.token = std::mem::take(&mut login.session_token);
        }
        let code = self.next_code(&secret, username);
        let elevated: Result<pb::AuthSession, Answer> = self.unary(
            "/occc.v1.Auth/Elevate",
            Who::User(index),
            &pb::ElevateRequest {
                totp_code: code,
                password: PASSWORD.to_owned(),
                recovery_code: String::new(),
            },
        );
        elevated.is_ok()
    }

    /// The code of the next TOTP step for `secret` (the clock moves there
    /// first).
    fn next_code(&self, secret: &[u8], username: &str) -> String {
        self.clock.advance(TOTP_STEP);
        let seconds = u64::try_from(self.clock.now().0 / 1_000).unwrap_or(0);
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            TOTP_STEP.as_secs(),
            secret.to_vec(),
            None,
            username.to_owned(),
        )
        .map(|totp| totp.generate(seconds))
        .unwrap_or_default()
    }

    /// Calls `path` with `message` as raw bytes.
    fn answer(&self, path: &str, who: Who, message: &[u8]) -> Answer {
        let request = grpc::request(path, self.authorization(who), message);
        self.runtime
            .block_on(async { grpc::answer(self.daemon.call(request).await) })
    }

    /// Calls a unary `path` with `message` and decodes its reply.
    fn unary<M: prost::Message, R: prost::Message + Default>(
        &self,
        path: &str,
        who: Who,
        message: &M,
    ) -> Result<R, Answer> {
        let request = grpc::request(path, self.authorization(who), &message.encode_to_vec());
        self.runtime
            .block_on(async { grpc::reply(self.daemon.call(request).await).await })
    }

    fn authorization(&self, who: Who) -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Stranger => Some("Bearer occs_not-a-session-of-this-daemon".to_owned()),
            Who::User(index) => self
                .users
                .get(index)
                .map(|user| format!("Bearer {}", user.token)),
        }
    }

    /// Shuts the daemon down and removes its folder.
    fn stop(self) {
        let Self {
            runtime,
            daemon,
            folder,
            ..
        } = self;
        runtime.block_on(daemon.shut_down("the fuzz harness starts a fresh daemon"));
        runtime.shutdown_timeout(Duration::from_secs(5));
        drop(folder);
    }
}

/// The harness's occcd.toml: cheap Argon2, the monitor off (no engine), one
/// OpenClaw config file to edit, skills recorded but not installed.
fn config_in(folder: &std::path::Path) -> Config {
    let openclaw = folder.join("openclaw.json");
    if let Err(err) = std::fs::write(&openclaw, OPENCLAW_CONFIG) {
        fail(&format!("cannot write {}: {err}", openclaw.display()));
    }
    let text = format!(
        "[auth]\nargon2_iterations = 1\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n\
         [integrity]\nenabled = false\ndocker_socket = {engine:?}\n\
         [[integrity.containers]]\nname = \"openclaw-gateway\"\nopenclaw_config = {openclaw:?}\n\
         [skills]\nmax_archive_bytes = 1048576\nmax_files = 64\nmax_file_bytes = 262144\n\
         max_unpacked_bytes = 1048576\n",
        engine = folder.join("no-engine.sock").display().to_string(),
        openclaw = openclaw.display().to_string(),
    );
    let file = folder.join("occcd.toml");
    if let Err(err) = std::fs::write(&file, text) {
        fail(&format!("cannot write {}: {err}", file.display()));
    }
    let mut config =
        Config::from_file(&file).unwrap_or_else(|err| fail(&format!("harness config: {err}")));
    config.use_dev_dir(folder);
    config
}

/// The OpenClaw config the daemon edits: JSON5, one secret.
const OPENCLAW_CONFIG: &str = r#"// fuzz harness
{
  gateway: { port: 18789, bind: "loopback", auth: { mode: "token", token: "gw_tok_fuzz0123456789" } },
  tools: { exec: { host: "sandbox", security: "allowlist", ask: "on-miss" } },
}
"#;
