//! Real PAM stacks for tests (root only): service files in `/etc/pam.d/`
//! built from Debian's own modules, a script that plays a fingerprint
//! sensor, and a prompter that plays the person at the client.
//!
//! Invariant: every service file and script is unique to this process and
//! removed when its handle drops; nothing here replaces libpam or a module.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use occc_client::{ClientError, PamPrompter};
use zeroize::Zeroizing;

/// A PAM service file this process wrote.
#[derive(Debug)]
pub struct PamService {
    name: String,
    file: PathBuf,
    _scripts: tempfile::TempDir,
    scripts: PathBuf,
}

impl PamService {
    /// Writes `/etc/pam.d/occc-e2e-<kind>-<pid>` with `stack`, in which
    /// `{scripts}` stands for a private folder holding the given scripts.
    pub fn install(kind: &str, stack: &str, scripts: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("occc-pam-")
            .tempdir()
            .expect("script folder");
        // pam_exec runs the scripts as the daemon's user: root here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod folder");
        for (name, body) in scripts {
            let path = dir.path().join(name);
            fs::write(&path, body).expect("write script");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        }
        let name = format!("occc-e2e-{kind}-{}", std::process::id());
        let file = Path::new("/etc/pam.d").join(&name);
        let stack = stack.replace("{scripts}", &dir.path().display().to_string());
        fs::write(&file, stack).expect("write /etc/pam.d service (needs root)");
        Self {
            name,
            file,
            scripts: dir.path().to_owned(),
            _scripts: dir,
        }
    }

    /// The service name for `[auth.pam] service`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon config section that selects this service, accepting PAM
    /// checks from root (the test process) for any linked user, up to four
    /// at once (tests of the per-uid limit use [`PamService::strict_config`]).
    #[must_use]
    pub fn config(&self, timeout_ms: u64) -> String {
        self.config_with_slots(timeout_ms, 4)
    }

    /// Like [`PamService::config`], with `max_concurrent` transactions.
    #[must_use]
    pub fn config_with_slots(&self, timeout_ms: u64, max_concurrent: usize) -> String {
        format!(
            "{}allow_root_peer = true\nmax_per_peer = {max_concurrent}\n",
            self.strict_config(timeout_ms, max_concurrent)
        )
    }

    /// The section without `allow_root_peer`: only the linked OS account's
    /// own uid may run its checks.
    #[must_use]
    pub fn strict_config(&self, timeout_ms: u64, max_concurrent: usize) -> String {
        format!(
            "[auth.pam]\nservice = \"{}\"\ntimeout_ms = {timeout_ms}\nmax_concurrent = {max_concurrent}\n",
            self.name
        )
    }

    /// A file in the scripts folder (scripts read their state from here).
    #[must_use]
    pub fn script_file(&self, name: &str) -> PathBuf {
        self.scripts.join(name)
    }

    /// Sets the sensor's next verdict (`match`, `nomatch`, `hang`).
    pub fn set_verdict(&self, verdict: &str) {
        fs::write(self.script_file("verdict"), verdict).expect("write verdict");
    }

    /// Waits until a [`HELD_SENSOR_SCRIPT`] is running (at most 10 s).
    pub async fn wait_until_held(&self) {
        let started = self.script_file("started");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !started.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the held sensor never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Lets a held sensor give its verdict.
    pub fn release(&self) {
        fs::write(self.script_file("go"), "").expect("write go");
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// The fingerprint sensor: reads its verdict (match, nomatch, hang) from
/// the file `verdict` beside it, says what a reader says, and answers.
pub const SENSOR_SCRIPT: &str = r#"#!/bin/sh
verdict=$(cat "$(dirname "$0")/verdict" 2>/dev/null || echo nomatch)
echo "Place your finger on the reader"
case "$verdict" in
  match) echo "Fingerprint recognised"; exit 0 ;;
  hang) sleep 8; exit 0 ;;
  *) echo "Fingerprint not recognised"; exit 1 ;;
esac
"#;

/// A sensor held at the reader: says "Place your finger on the reader",
/// marks itself `started`, waits (at most 20 s) until the file `go` appears,
/// then gives the verdict from `verdict` like [`SENSOR_SCRIPT`].
pub const HELD_SENSOR_SCRIPT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "Place your finger on the reader"
touch "$dir/started"
i=0
while [ ! -e "$dir/go" ] && [ "$i" -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
rm -f "$dir/started" "$dir/go"
verdict=$(cat "$dir/verdict" 2>/dev/null || echo nomatch)
case "$verdict" in
  match) echo "Fingerprint recognised"; exit 0 ;;
  *) echo "Fingerprint not recognised"; exit 1 ;;
esac
"#;

/// Stack: the sensor script through pam_exec (its output goes to the
/// conversation), account check always passing.
pub const SENSOR_STACK: &str = "auth required pam_exec.so stdout quiet {scripts}/sensor.sh\n\
                                account required pam_permit.so\n";

/// Stack: real passwords of real OS users, and their account expiry.
pub const UNIX_STACK: &str = "auth required pam_unix.so nodelay\n\
                              account required pam_unix.so\n";

/// Stack that asks a question: pam_echo explains, pam_exec asks for a
/// token through the conversation and the script checks it is "blue".
pub const QUESTION_STACK: &str = "auth requisite pam_echo.so What colour is the sky? Answer below.\n\
                                  auth required pam_exec.so expose_authtok quiet {scripts}/answer.sh\n\
                                  account required pam_permit.so\n";

/// Checks the answer pam_exec passes on standard input.
pub const ANSWER_SCRIPT: &str = "#!/bin/sh\nread -r answer\n[ \"$answer\" = \"blue\" ]\n";

/// A sensor service whose script waits at the reader until released
/// ([`HELD_SENSOR_SCRIPT`] as `sensor.sh` in [`SENSOR_STACK`]).
#[must_use]
pub fn held_sensor(kind: &str) -> PamService {
    PamService::install(kind, SENSOR_STACK, &[("sensor.sh", HELD_SENSOR_SCRIPT)])
}

/// Plays the person: records what the stack shows and asks, and answers
/// questions from a list, in order.
#[derive(Debug, Default)]
pub struct ScriptedPerson {
    answers: Mutex<Vec<String>>,
    seen: Mutex<Vec<String>>,
}

impl ScriptedPerson {
    /// A person who will answer `answers`, first to last.
    #[must_use]
    pub fn answering(answers: &[&str]) -> Self {
        Self {
            answers: Mutex::new(answers.iter().rev().map(|a| (*a).to_owned()).collect()),
            seen: Mutex::default(),
        }
    }

    /// Everything shown or asked, as "info: …", "error: …", "ask: …", "ask-hidden: …".
    #[must_use]
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

impl PamPrompter for ScriptedPerson {
    fn show(&self, text: &str, error: bool) {
        let kind = if error { "error" } else { "info" };
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{kind}: {text}"));
    }

    fn ask(&self, question: &str, hidden: bool) -> Result<Zeroizing<String>, ClientError> {
        let kind = if hidden { "ask-hidden" } else { "ask" };
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{kind}: {question}"));
        let answer = self.answers.lock().expect("lock").pop();
        answer.map(Zeroizing::new).ok_or_else(|| {
            ClientError::Rpc(tonic::Status::cancelled(
                "the scripted person has no answer left",
            ))
        })
    }
}
