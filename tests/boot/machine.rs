//! A Debian root booted with systemd as its PID 1 (`systemd-nspawn --boot`),
//! and commands run inside it through `nsenter` into its namespaces (the
//! host's PID 1 is not systemd here, so machinectl cannot reach it).
//!
//! Invariant: every root is a fresh copy of a cached debootstrap tarball
//! (`target/boot-root/`), never reused between runs; dropping the machine
//! powers it off (SIGKILL after 20 s) and deletes its root.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The Debian release the root is built from (the host's).
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// Packages the root needs beyond minbase: systemd as PID 1, D-Bus for
/// systemctl's and systemd-creds' conversations, and procps and libssl3,
/// which the package depends on (occcd.service reloads with procps' kill;
/// SQLCipher's crypto is libcrypto).
const INCLUDE: &str = "systemd,systemd-sysv,dbus,procps,libssl3";
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a machine could not be booted (the test says it and stops).
pub type Unavailable = String;

/// A booted Debian root.
#[derive(Debug)]
pub struct Machine {
    nspawn: Child,
    leader: u32,
    root: PathBuf,
    console: PathBuf,
}

fn boot_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target")
        .join("boot-root")
}

/// The cached root tarball, built by debootstrap on first use (~35 s).
fn cached_root() -> Result<PathBuf, Unavailable> {
    let folder = boot_folder();
    let tarball = folder.join(format!("{SUITE}-minbase-{}.tar", INCLUDE.replace(',', "-")));
    if tarball.exists() {
        return Ok(tarball);
    }
    fs::create_dir_all(&folder)
        .map_err(|err| format!("cannot create {}: {err}", folder.display()))?;
    let build = folder.join("debootstrap");
    let _ = fs::remove_dir_all(&build);
    let started = Instant::now();
    let output = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
        .arg(&build)
        .arg(MIRROR)
        .output()
        .map_err(|err| format!("cannot run debootstrap: {err} (apt install debootstrap)"))?;
    if !output.status.success() {
        return Err(format!(
            "debootstrap of {SUITE} from {MIRROR} failed ({}); {}",
            output.status,
            why_debootstrap_failed(&output, &build)
        ));
    }
    eprintln!("boot: debootstrap took {:.0?}", started.elapsed());
    let partial = folder.join("partial.tar");
    let packed = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&build)
        .args(["-cf"])
        .arg(&partial)
        .arg(".")
        .status()
        .map_err(|err| format!("cannot run tar: {err}"))?;
    if !packed.success() {
        return Err(format!("packing the root failed ({packed})"));
    }
    fs::rename(&partial, &tarball).map_err(|err| format!("cannot keep the root: {err}"))?;
    let _ = fs::remove_dir_all(&build);
    Ok(tarball)
}

/// What a failed debootstrap said (it writes its errors to stdout or to
/// its log inside the root as often as to stderr) and the free space left
/// where it wrote: a full disk fails it without a word of its own.
fn why_debootstrap_failed(output: &Output, build: &Path) -> String {
    let last_lines = |text: &str| {
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(5)..].join(" / ")
    };
    let log = fs::read_to_string(build.join("debootstrap/debootstrap.log")).unwrap_or_default();
    let free = nix::sys::statvfs::statvfs(build.parent().unwrap_or(build)).map_or_else(
        |err| format!("free space unknown ({err})"),
        |fs| {
            let bytes = fs.blocks_available().saturating_mul(fs.fragment_size());
            format!("{} MiB free on its filesystem", bytes >> 20)
        },
    );
    format!(
        "stderr: [{}]; stdout: [{}]; debootstrap.log: [{}]; {free}",
        last_lines(&String::from_utf8_lossy(&output.stderr)),
        last_lines(&String::from_utf8_lossy(&output.stdout)),
        last_lines(&log),
    )
}

/// What stops a boot on this machine before trying, if anything.
pub fn preconditions() -> Result<(), Unavailable> {
    if !nix::unistd::geteuid().is_root() {
        return Err("root (systemd-nspawn and debootstrap)".to_owned());
    }
    for tool in [
        "/usr/bin/systemd-nspawn",
        "/usr/sbin/debootstrap",
        "/usr/bin/nsenter",
    ] {
        if !Path::new(tool).exists() {
            return Err(format!(
                "{tool} (packages systemd-container, debootstrap, util-linux)"
            ));
        }
    }
    Ok(())
}

impl Machine {
    /// Unpacks a fresh root, copies `files` into its /root, and boots it.
    pub fn boot(files: &[&Path]) -> Result<Self, Unavailable> {
        let tarball = cached_root()?;
        let root = boot_folder().join(format!("run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).map_err(|err| format!("cannot create the root: {err}"))?;
        let unpacked = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&root)
            .arg("-xf")
            .arg(&tarball)
            .status()
            .map_err(|err| format!("cannot run tar: {err}"))?;
        if !unpacked.success() {
            return Err(format!("unpacking {} failed", tarball.display()));
        }
        for file in files {
            let name = file.file_name().ok_or("a file to copy has no name")?;
            fs::copy(file, root.join("root").join(name))
                .map_err(|err| format!("cannot copy {}: {err}", file.display()))?;
        }
        let console = root.with_extension("console.log");
        let _ = fs::remove_file(&console);
        let nspawn = start_nspawn(&root, &console)?;
        let mut machine = Self {
            leader: 0,
            nspawn,
            root,
            console,
        };
        machine.leader = machine.find_leader()?;
        machine.wait_for_boot()?;
        Ok(machine)
    }

    /// Powers the machine off cleanly and boots the same root again, as a
    /// host reboots: its files are kept, `/run` starts empty.
    pub fn reboot(&mut self) -> Result<(), Unavailable> {
        self.power_off();
        self.nspawn = start_nspawn(&self.root, &self.console)?;
        self.leader = self.find_leader()?;
        self.wait_for_boot()
    }

    /// A clean poweroff first; then the container's PID 1 is killed (which
    /// ends every process in it): systemd-nspawn gone, an orphaned
    /// container would otherwise go on running.
    /// Once per boot: the leader is forgotten first (0: none known), so a
    /// pid the host may have reused since is never entered or signalled.
    fn power_off(&mut self) {
        let leader = std::mem::replace(&mut self.leader, 0);
        if leader != 0 {
            let _ = nsenter(leader, &["systemctl", "poweroff"]).output();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.nspawn.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Still there: killing PID 1 of the container ends all of it.
            if self.nspawn.try_wait().ok().flatten().is_none()
                && let Ok(leader) = i32::try_from(leader)
                && leader > 1
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(leader),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }

    /// The container's PID 1, as the host numbers it: a process whose
    /// innermost pid is 1, below systemd-nspawn.
    fn find_leader(&mut self) -> Result<u32, Unavailable> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let nspawn = self.nspawn.id();
        loop {
            if let Some(status) = self.nspawn.try_wait().map_err(|err| err.to_string())? {
                return Err(format!(
                    "systemd-nspawn exited ({status}): {}",
                    self.console_text()
                ));
            }
            if let Some(pid) = descendant_init(nspawn) {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no PID 1 under systemd-nspawn after 30 s: {}",
                    self.console_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_boot(&self) -> Result<(), Unavailable> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let state = self.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return Ok(());
            }
            if Instant::now() > deadline {
                let failed = self.run(&["systemctl", "--failed", "--no-legend"]);
                return Err(format!(
                    "systemd did not finish booting in 90 s (state {state:?}; failed units: {})",
                    String::from_utf8_lossy(&failed.stdout)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What the container printed so far.
    pub fn console_text(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// A command run as root inside the container.
    pub fn command(&self, argv: &[&str]) -> Command {
        nsenter(self.leader, argv)
    }

    /// Runs `argv` as root inside the container.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Runs `argv` as root and returns its stdout; panics with its output
    /// when it fails.
    pub fn ok(&self, argv: &[&str]) -> String {
        let output = self.run(argv);
        assert!(
            output.status.success(),
            "{argv:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `argv` as OS user `user` (its home, no root environment).
    pub fn as_user(&self, user: &str, argv: &[&str]) -> Command {
        let home = format!("HOME=/home/{user}");
        let mut full = vec!["runuser", "-u", user, "--", "env", home.as_str()];
        full.extend_from_slice(argv);
        self.command(&full)
    }

    /// Writes `contents` to `path` inside the container (its /run is the
    /// container's own tmpfs, so files go in through a shell there).
    pub fn write(&self, path: &str, contents: &str) {
        use std::io::Write;
        let mut child = self
            .command(&["sh", "-c", "cat > \"$1\"", "sh", path])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(contents.as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success(), "cannot write {path}");
    }

    /// The main pid of `unit` (0 when not running).
    pub fn main_pid(&self, unit: &str) -> u32 {
        self.ok(&["systemctl", "show", "-P", "MainPID", unit])
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// `systemctl is-active unit`.
    pub fn state(&self, unit: &str) -> String {
        let output = self.run(&["systemctl", "is-active", unit]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The unit's journal since boot.
    pub fn journal(&self, unit: &str) -> String {
        self.ok(&["journalctl", "--no-pager", "-o", "cat", "-u", unit])
    }

    /// Waits up to `within` for `done` (on the machine's own progress).
    pub fn wait_until(&self, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {within:?}; occcd's journal:\n{}",
                self.journal("occcd.service")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.power_off();
        let _ = fs::remove_dir_all(&self.root);
        let _ = fs::remove_file(&self.console);
    }
}

/// `argv` as root in the namespaces of the container whose PID 1 is `leader`.
fn nsenter(leader: u32, argv: &[&str]) -> Command {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--target={leader}"))
        .args([
            "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd",
        ])
        .args(["env", "-i", PATH, "HOME=/root", "LANG=C.UTF-8"])
        .args(argv);
    command
}

/// Boots `root` with systemd as its PID 1, its console appended to `console`.
fn start_nspawn(root: &Path, console: &Path) -> Result<Child, Unavailable> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(console)
        .map_err(|err| format!("console log: {err}"))?;
    Command::new("systemd-nspawn")
        .args([
            "--quiet",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--console=passive",
        ])
        // As on a real host: without it nspawn's own filter refuses the
        // mlock(2) SQLCipher uses for its key and page memory.
        .arg("--capability=CAP_IPC_LOCK")
        .arg(format!("--machine=occcboot{}", std::process::id()))
        .arg("-D")
        .arg(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|err| err.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|err| format!("cannot start systemd-nspawn: {err}"))
}

/// A process below `ancestor` whose innermost pid is 1.
fn descendant_init(ancestor: u32) -> Option<u32> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let innermost_is_one = status
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .is_some_and(|pids| {
                let pids: Vec<&str> = pids.split_whitespace().collect();
                pids.len() > 1 && pids.last() == Some(&"1")
            });
        if innermost_is_one && descends_from(pid, ancestor) {
            return Some(pid);
        }
    }
    None
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..16 {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        let Some(parent) = status
            .lines()
            .find_map(|line| line.strip_prefix("PPid:"))
            .and_then(|ppid| ppid.trim().parse::<u32>().ok())
        else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        pid = parent;
    }
    false
}
