//! Harness for end-to-end tests and benchmarks: runs the *built* `occcd`
//! binary in dev mode in a private folder and talks to it over its real
//! socket with the real client.
//!
//! Invariant: every daemon started here is killed when its handle drops, so
//! a failing test leaves no process behind.
//!
//! Unix only: the harness drives Unix sockets, PAM, dockerd and systemd.
#![cfg(unix)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub mod big_snapshot;
pub mod breakable_disk;
pub mod docker;
pub mod fault_proxy;
pub mod generated_audit;
pub mod in_process_daemon;
pub mod load;
pub mod os_user;
pub mod pam_stack;
pub mod people;
pub mod process_usage;
pub mod receivers;
pub mod skip;
pub mod small_disk;
pub mod socket_proxy;

use occc_client::{ConnectOptions, OcccClient};
use occcd::{
    audit::ChainHasher, config::Config, crypto::KeyPurpose, lifecycle::open_store, store::Store,
};

/// Argon2 parameters for tests: cheap, so suites stay fast in debug builds.
pub const CHEAP_ARGON2: &str =
    "argon2_iterations = 1\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n";

/// How long a daemon may take to answer its first health check.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Path of a binary built from this workspace (`occcd`, `occcctl`); refuses
/// one older than the sources it is built from, so a test never runs a stale
/// daemon.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>  →  target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder");
    let binary = profile_dir.join(name);
    let built = fs::metadata(&binary).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!("{} is missing: build it first (cargo build --workspace --bins), or run scripts/test", binary.display())
    });
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    // The crates each binary is built from.
    let sources: &[&str] = match name {
        "occcd" => &["daemon", "proto"],
        "occc-peer" => &["tests/src/bin", "client-sdk/src", "proto"],
        _ => &["client-sdk/src", "proto"],
    };
    // Cargo's list of the files the binary was compiled from, when there is
    // one (a file compiled for another platform only does not count); else
    // every file of the crates it is built from.
    let newest_source = newest_dependency(&binary).unwrap_or_else(|| {
        sources
            .iter()
            .filter_map(|crate_dir| newest_modification(&workspace.join(crate_dir)))
            .max()
    });
    assert!(
        newest_source.is_none_or(|newest| newest <= built),
        "{} is older than its sources: run cargo build --workspace --bins (scripts/test does)",
        binary.display()
    );
    binary
}

/// The newest change to a file cargo's dep-info (`<binary>.d`) names;
/// `None` when there is no dep-info to read.
fn newest_dependency(binary: &Path) -> Option<Option<std::time::SystemTime>> {
    let text = fs::read_to_string(binary.with_extension("d")).ok()?;
    let (_, dependencies) = text.lines().next()?.split_once(": ")?;
    let mut paths = vec![String::new()];
    let mut chars = dependencies.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => paths.last_mut()?.extend(chars.next()),
            ' ' => paths.push(String::new()),
            c => paths.last_mut()?.push(c),
        }
    }
    Some(
        paths
            .iter()
            .filter(|path| !path.is_empty())
            .filter_map(|path| fs::metadata(path).and_then(|m| m.modified()).ok())
            .max(),
    )
}

/// The newest change to a file a binary is built from below `dir`
/// (unit-test files, `*_tests.rs`, are not in the binary).
fn newest_modification(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            newest_modification(&path)
        } else if path
            .file_stem()
            .is_some_and(|stem| stem.to_string_lossy().ends_with("_tests"))
        {
            None
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(modified);
    }
    newest
}

/// A dev-mode state folder: socket, database, key and the daemon's log.
#[derive(Debug)]
pub struct DevDir {
    dir: tempfile::TempDir,
}

impl DevDir {
    /// A fresh, private (0700) folder.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("occcd-e2e-")
            .tempdir()
            .expect("temp dir");
        let dev = Self { dir };
        dev.set_config("");
        dev
    }

    /// Writes the folder's config: cheap Argon2 parameters (tests that
    /// measure the real cost say so) plus `extra` TOML (any section but `[auth]`).
    pub fn set_config(&self, extra: &str) {
        self.set_config_with_auth(CHEAP_ARGON2, extra);
    }

    /// Writes the folder's config with `auth` as the `[auth]` section body.
    pub fn set_config_with_auth(&self, auth: &str, extra: &str) {
        fs::write(self.config_path(), format!("[auth]\n{auth}\n{extra}\n"))
            .expect("write test config");
    }

    /// The folder's config file, passed to every daemon started here.
    pub fn config_path(&self) -> PathBuf {
        self.path().join("occcd.toml")
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.path().join("occcd.sock")
    }

    /// The encrypted database.
    pub fn database(&self) -> PathBuf {
        self.path().join("state").join("occcd.db")
    }

    /// The generated key file.
    pub fn key_file(&self) -> PathBuf {
        self.path().join("state").join("master.key")
    }

    /// Everything the daemons started in this folder printed.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path().join("occcd.log")).unwrap_or_default()
    }

    /// The effective config a daemon in this folder uses.
    pub fn config(&self) -> Config {
        let mut config = Config::from_file(&self.config_path()).expect("test config parses");
        config.use_dev_dir(self.path());
        config
    }

    /// Opens the store directly with the folder's key, as an operator could.
    pub async fn open_store(&self) -> (Store, ChainHasher) {
        let unlocked = open_store(&self.config())
            .await
            .expect("open store with the dev key");
        let hasher = ChainHasher::new(&unlocked.keys.derive(KeyPurpose::AuditChain));
        (unlocked.store, hasher)
    }

    /// Runs `occcd --dev <dir> <args>` to completion, returning exit status and output.
    pub async fn run_occcd(&self, args: &[&str]) -> (ExitStatus, String) {
        let output = tokio::process::Command::new(workspace_binary("occcd"))
            .arg("--dev")
            .arg(self.path())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run occcd");
        let mut text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // A crash prints nothing of its own: say it with what it printed.
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&output.status) {
            text.push_str(&format!("\n(occcd ended by signal {signal})"));
        }
        (output.status, text)
    }

    /// Starts `occcd --dev <dir> <args>` with output appended to the folder's log.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.spawn_logging(args, "info,occcd=debug")
    }

    /// Like [`DevDir::spawn`], with `OCCCD_LOG=<filter>`.
    pub fn spawn_logging(&self, args: &[&str], filter: &str) -> Child {
        self.occcd_command(args, filter)
            .spawn()
            .expect("spawn occcd")
    }

    /// The argument list of `occcd --dev <dir> --config <file> <args>`.
    pub fn occcd_args(&self, args: &[&str]) -> Vec<std::ffi::OsString> {
        let mut all = vec![
            "--dev".into(),
            self.path().as_os_str().to_owned(),
            "--config".into(),
            self.config_path().into_os_string(),
        ];
        all.extend(args.iter().map(std::ffi::OsString::from));
        all
    }

    /// The command [`DevDir::spawn_logging`] runs, for callers that add to
    /// its environment: output appended to the folder's log.
    pub fn occcd_command(&self, args: &[&str], filter: &str) -> Command {
        let mut command = Command::new(workspace_binary("occcd"));
        command.args(self.occcd_args(args));
        self.log_to_folder(&mut command, filter);
        command
    }

    /// Sends `command`'s output to the folder's log, with `OCCCD_LOG=<filter>`.
    pub fn log_to_folder(&self, command: &mut Command, filter: &str) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("occcd.log"))
            .expect("open daemon log");
        command
            .env("OCCCD_LOG", filter)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
    }
}

impl Default for DevDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A running daemon; killed on drop.
#[derive(Debug)]
pub struct RunningDaemon {
    child: Option<Child>,
    options: ConnectOptions,
}

impl RunningDaemon {
    /// Starts a daemon in `dir` and waits until it reports SERVING.
    pub async fn start(dir: &DevDir) -> Self {
        Self::start_with(dir, &[]).await
    }

    /// Like [`RunningDaemon::start`], logging with `OCCCD_LOG=<filter>`.
    pub async fn start_with_log_filter(dir: &DevDir, filter: &str) -> Self {
        Self::wait_ready(dir, dir.spawn_logging(&[], filter)).await
    }

    /// Like [`RunningDaemon::start`], with extra command-line arguments.
    pub async fn start_with(dir: &DevDir, args: &[&str]) -> Self {
        Self::wait_ready(dir, dir.spawn(args)).await
    }

    /// Takes over `child`, a daemon started in `dir` some other way, once
    /// it reports SERVING.
    pub async fn adopt(dir: &DevDir, child: Child) -> Self {
        Self::wait_ready(dir, child).await
    }

    async fn wait_ready(dir: &DevDir, mut child: Child) -> Self {
        let options = ConnectOptions::dev(dir.path());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("poll daemon") {
                panic!(
                    "occcd exited during start-up ({status}); log:\n{}",
                    dir.log()
                );
            }
            if let Ok(client) = OcccClient::connect(&options).await
                && client.health().await.is_ok()
            {
                return Self {
                    child: Some(child),
                    options,
                };
            }
            assert!(
                Instant::now() < deadline,
                "occcd not ready after {READY_TIMEOUT:?}; log:\n{}",
                dir.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A new client connection.
    pub async fn client(&self) -> OcccClient {
        OcccClient::connect(&self.options)
            .await
            .expect("connect to occcd")
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running daemon")
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill_hard(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// Sends SIGTERM and waits for the exit status, without blocking the
    /// runtime (client connections must be able to see the daemon's GOAWAY).
    pub async fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running daemon");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("poll daemon") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "occcd did not stop within 30 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SHA-256 of a file, hex-encoded.
pub fn sha256_file(path: &Path) -> String {
    let bytes = fs::read(path).expect("read file");
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
}

/// Whether a call that takes a place (a stream, an export) got one: `true`
/// when it opened, `false` when refused RESOURCE_EXHAUSTED; any other
/// refusal fails the test.
pub fn place_granted<T>(opened: Result<T, tonic::Status>) -> bool {
    match opened {
        Ok(_) => true,
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
            false
        }
    }
}
