//! A real Docker engine for integrity tests: the shared one `scripts/test`
//! starts on a private socket (`OCCC_TEST_DOCKER_SOCKET`), or a private one
//! a test starts and stops itself; the test image is built from Debian's
//! busybox-static and imported — nothing is ever pulled.
//!
//! Invariant: every container a test creates has a unique name and is
//! removed when its handle drops; a private engine is stopped on drop.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// The image every test container runs.
pub const TEST_IMAGE: &str = "occc-test/busybox:1";
/// The environment variable naming the shared engine's socket.
pub const SOCKET_ENV: &str = "OCCC_TEST_DOCKER_SOCKET";

/// Serialises image imports within this process.
static IMPORT: Mutex<()> = Mutex::new(());

/// The shared engine's socket, or `None` (the caller skips loudly).
#[must_use]
pub fn shared_socket() -> Option<PathBuf> {
    let socket = PathBuf::from(std::env::var_os(SOCKET_ENV)?);
    ensure_test_image(&socket);
    Some(socket)
}

/// Records that `test` did not run for want of an engine (fails under CI).
pub fn say_skipped(test: &str) {
    crate::skip::unavailable(
        test,
        &format!("a Docker engine (scripts/test starts one and sets {SOCKET_ENV})"),
    );
}

/// How long one docker CLI call may take before the test fails (a wedged
/// engine must fail a test, not hang it).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the docker CLI against `socket`.
pub fn docker(socket: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI runs");
    let deadline = Instant::now() + CLI_TIMEOUT;
    while child.try_wait().expect("wait for docker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docker {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("docker output")
}

/// Starts `command` in `container` and returns once it started, without
/// waiting for it to end: an exec is what the monitor quarantines on, and
/// the pause it triggers can land before even `true` exits — an attached
/// CLI then waits on a frozen process until the test's timeout.
pub fn exec_detached(socket: &Path, container: &str, command: &[&str]) {
    let mut args = vec!["exec", "-d", container];
    args.extend_from_slice(command);
    docker_ok(socket, &args);
}

/// Runs the docker CLI and insists it succeeds; returns stdout, trimmed.
pub fn docker_ok(socket: &Path, args: &[&str]) -> String {
    let output = docker(socket, args);
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Imports [`TEST_IMAGE`] into the engine at `socket` unless it is there:
/// `/bin/busybox` (static) with its applets, users root and node (1000),
/// and `/app/gateway.sh`, which sleeps forever as the gateway would serve.
pub fn ensure_test_image(socket: &Path) {
    let _serial = IMPORT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if docker(socket, &["image", "inspect", TEST_IMAGE])
        .status
        .success()
    {
        return;
    }
    let root = tempfile::tempdir().expect("rootfs folder");
    let rootfs = root.path().join("rootfs");
    for dir in ["bin", "etc", "tmp", "app", "home/node"] {
        fs::create_dir_all(rootfs.join(dir)).expect("rootfs dir");
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox (busybox-static)");
    for applet in [
        "sh", "sleep", "cat", "ls", "echo", "id", "ps", "true", "touch", "chmod",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
            .expect("applet link");
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnode:x:1000:\n").expect("group");
    let gateway = rootfs.join("app/gateway.sh");
    fs::write(&gateway, "#!/bin/sh\nexec sleep 2147483647\n").expect("gateway script");
    fs::set_permissions(&gateway, fs::Permissions::from_mode(0o755)).expect("chmod gateway");
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    let tarball = root.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar the rootfs");
    docker_ok(
        socket,
        &[
            "import",
            "--change",
            "USER node",
            "--change",
            "CMD [\"/app/gateway.sh\"]",
            tarball.to_str().expect("utf-8 path"),
            TEST_IMAGE,
        ],
    );
}

/// A container this test created; removed (forcibly) on drop.
#[derive(Debug)]
pub struct TestContainer {
    socket: PathBuf,
    /// Its name.
    pub name: String,
}

impl TestContainer {
    /// `docker create --pull never --name <unique> <flags> TEST_IMAGE`.
    pub fn create(socket: &Path, label: &str, flags: &[&str]) -> Self {
        Self::create_with_command(socket, label, flags, &[])
    }

    /// The same, running `command` instead of the gateway script.
    pub fn create_with_command(
        socket: &Path,
        label: &str,
        flags: &[&str],
        command: &[&str],
    ) -> Self {
        let name = format!("occc-e2e-{label}-{}", std::process::id());
        let _ = docker(socket, &["rm", "-f", &name]);
        let mut args = vec!["create", "--pull", "never", "--name", &name];
        args.extend_from_slice(flags);
        args.push(TEST_IMAGE);
        args.extend_from_slice(command);
        docker_ok(socket, &args);
        Self {
            socket: socket.to_owned(),
            name,
        }
    }

    /// Flags of a container that follows every rule occcd checks.
    #[must_use]
    pub fn hardened_flags() -> Vec<&'static str> {
        vec![
            "--user",
            "node",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--memory",
            "64m",
            "--pids-limit",
            "64",
        ]
    }

    /// `docker start`.
    pub fn start(&self) {
        docker_ok(&self.socket, &["start", &self.name]);
    }

    /// The host folder of its writable layer (overlay2's `UpperDir`).
    #[must_use]
    pub fn upper_dir(&self) -> PathBuf {
        PathBuf::from(self.inspect("{{.GraphDriver.Data.UpperDir}}"))
    }

    /// `docker inspect -f <format>`.
    #[must_use]
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&self.socket, &["inspect", "-f", format, &self.name])
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = docker(&self.socket, &["rm", "-f", &self.name]);
    }
}

/// A dockerd only this test uses (it may stop and restart it): its own
/// bridge (never docker0, which `--bridge none` would delete), no iptables,
/// live-restore so containers outlive an engine restart.
#[derive(Debug)]
pub struct PrivateEngine {
    dir: tempfile::TempDir,
    process: Option<Child>,
    bridge: String,
    /// Which of this process's engines it is (its bridge and subnet).
    index: u32,
}

/// Engines started by this test process so far: each gets its own bridge
/// and subnet, as tests run side by side.
static ENGINES_STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl PrivateEngine {
    /// Starts the engine and imports the test image.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("occc-pe-")
            .tempdir_in("/tmp")
            .expect("engine folder");
        let index = ENGINES_STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        // At most 15 characters, as the kernel wants.
        let bridge = format!("occc-p{}{index}", std::process::id() % 100_000);
        let _ = Command::new("ip")
            .args(["link", "delete", &bridge])
            .status();
        let made = Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .expect("ip runs (iproute2)");
        assert!(made.success(), "create bridge {bridge}");
        let up = Command::new("ip")
            .args(["link", "set", &bridge, "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "bring {bridge} up");
        let mut engine = Self {
            dir,
            process: None,
            bridge,
            index,
        };
        engine.resume();
        ensure_test_image(&engine.socket());
        engine
    }

    /// The engine's socket.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// Stops dockerd (containers keep running: live-restore).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(process.id()).expect("pid"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = process.wait();
        }
    }

    /// Kills dockerd outright (SIGKILL: no clean-up, requests in flight
    /// cut); containers keep running under their shims.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// The last `lines` lines dockerd logged since it was last started.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts dockerd again and waits until it answers.
    pub fn resume(&mut self) {
        let base = self.dir.path();
        let log = fs::File::create(base.join("dockerd.log")).expect("engine log");
        let process = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(base.join("data"))
            .arg("--exec-root")
            .arg(base.join("exec"))
            .arg("--pidfile")
            .arg(base.join("dockerd.pid"))
            .args([
                "--bridge",
                &self.bridge,
                "--iptables=false",
                "--ip-masq=false",
            ])
            .args([
                "--fixed-cidr",
                &format!("10.214.{}.0/24", self.index),
                "--live-restore",
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd runs (docker.io)");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !docker(&self.socket(), &["version"]).status.success() {
            assert!(Instant::now() < deadline, "private dockerd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.process.is_none() {
            let _ = Command::new("ip")
                .args(["link", "delete", &self.bridge])
                .status();
            return;
        }
        for container in docker(&self.socket(), &["ps", "-aq"])
            .stdout
            .split(|b| *b == b'\n')
        {
            if let Ok(id) = std::str::from_utf8(container)
                && !id.is_empty()
            {
                let _ = docker(&self.socket(), &["rm", "-f", id]);
            }
        }
        self.stop();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .status();
    }
}
