//! Real receivers of occcd's events for tests: Debian's rsyslogd (plain TCP
//! or TLS through its gtls driver) and a Python webhook receiver that
//! checks signatures the way a team's own would
//! (`tests/receivers/webhook_receiver.py`).
//!
//! Invariant: each receiver runs in its own folder on a port of its own and
//! is killed when its handle drops; what it accepted is read back from the
//! files it wrote, never from occcd.

use std::{
    collections::BTreeMap,
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, made
/// with the `openssl` command.
pub struct TlsFiles {
    /// The CA's certificate (PEM).
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Generates them in `dir`.
    pub fn generate(dir: &Path) -> Self {
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=occc test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

/// A free loopback port (free when asked; nothing reserves it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `port` (15 s at most).
fn await_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// rsyslogd receiving RFC 5424 over TCP and writing each message, as it
/// parsed it, to `received.log`.
pub struct Rsyslog {
    dir: TempDir,
    /// Where it listens.
    pub port: u16,
    tls: bool,
    child: Option<Child>,
}

impl Rsyslog {
    /// Starts rsyslogd (in TLS with `tls`'s certificate when given).
    pub fn start(tls: Option<&TlsFiles>) -> Self {
        let dir = tempfile::tempdir().expect("rsyslog folder");
        let (global, module) = match tls {
            None => (String::new(), "module(load=\"imtcp\")".to_owned()),
            Some(files) => (
                format!(
                    "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
                     DefaultNetstreamDriverKeyFile=\"{}\")\n",
                    files.ca.display(),
                    files.cert.display(),
                    files.key.display()
                ),
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                 StreamDriver.AuthMode=\"anon\")"
                    .to_owned(),
            ),
        };
        let port = free_port();
        let conf = format!(
            "global(workDirectory=\"{dir}\")\n{global}{module}\n\
             template(name=\"parsed\" type=\"string\" string=\"%protocol-version%|%msgid%|%structured-data%|%msg%\\n\")\n\
             ruleset(name=\"occc\") {{ action(type=\"omfile\" file=\"{dir}/received.log\" template=\"parsed\") }}\n\
             input(type=\"imtcp\" port=\"{port}\" ruleset=\"occc\")\n",
            dir = dir.path().display()
        );
        fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let mut receiver = Self {
            dir,
            port,
            tls: tls.is_some(),
            child: None,
        };
        receiver.resume();
        receiver
    }

    /// Starts it again on the same port after [`Rsyslog::stop`].
    pub fn resume(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("start rsyslogd (Debian's rsyslog package)");
        self.child = Some(child);
        await_listening(
            self.port,
            if self.tls {
                "rsyslogd (TLS)"
            } else {
                "rsyslogd"
            },
        );
    }

    /// Kills it (an outage: whatever it had not written is its own loss).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What it wrote: `version|msgid|structured-data|msg` lines.
    #[must_use]
    pub fn received(&self) -> String {
        fs::read_to_string(self.dir.path().join("received.log")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The webhook receiver script, verifying signatures with `secret`.
pub struct WebhookReceiver {
    dir: TempDir,
    /// The URL to configure.
    pub url: String,
    child: Child,
}

impl WebhookReceiver {
    /// Starts it; the secret is written to `secret_file` (mode 0600).
    pub fn start(secret: &str, secret_file: &Path) -> Self {
        let dir = tempfile::tempdir().expect("receiver folder");
        fs::write(secret_file, format!("{secret}\n")).unwrap();
        fs::set_permissions(
            secret_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("receivers/webhook_receiver.py");
        let port_file = dir.path().join("port");
        let child = Command::new("python3")
            .arg(script)
            .arg(secret_file)
            .arg(dir.path().join("received.jsonl"))
            .arg(dir.path().join("down"))
            .arg(&port_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the webhook receiver");
        let deadline = Instant::now() + Duration::from_secs(15);
        let port = loop {
            if let Ok(port) = fs::read_to_string(&port_file) {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook receiver never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            url: format!("http://127.0.0.1:{port}/occcd"),
            dir,
            child,
        }
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        let flag = self.dir.path().join("down");
        if down {
            fs::write(flag, "").unwrap();
        } else {
            let _ = fs::remove_file(flag);
        }
    }

    /// Answers with `Connection: close` and closes at once while `closing`.
    pub fn set_closing(&self, closing: bool) {
        let flag = self.dir.path().join("down.close");
        if closing {
            fs::write(flag, "").unwrap();
        } else {
            let _ = fs::remove_file(flag);
        }
    }

    /// The bodies it accepted (signature valid), one per line.
    #[must_use]
    pub fn received(&self) -> String {
        fs::read_to_string(self.dir.path().join("received.jsonl")).unwrap_or_default()
    }

    /// Bodies it refused for a bad signature.
    #[must_use]
    pub fn refused(&self) -> String {
        fs::read_to_string(self.dir.path().join("received.jsonl.refused")).unwrap_or_default()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often each record id occurs in `received` (records are JSON objects
/// starting `{"id":N,`).
#[must_use]
pub fn record_ids(received: &str) -> BTreeMap<u64, usize> {
    let mut ids = BTreeMap::new();
    for piece in received.split("{\"id\":").skip(1) {
        let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(id) = digits.parse() {
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

/// Polls `received` until `done` holds of it (30 s at most); returns it.
pub async fn await_received(
    received: impl FnMut() -> String,
    done: impl FnMut(&str) -> bool,
    what: &str,
) -> String {
    match try_await_received(received, done).await {
        Ok(text) => text,
        Err(text) => panic!("{what}; received so far:\n{text}"),
    }
}

/// Like [`await_received`], but gives what was received by the deadline as
/// `Err` (for a test that adds the daemon's log to its failure).
pub async fn try_await_received(
    mut received: impl FnMut() -> String,
    mut done: impl FnMut(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = received();
        if done(&text) {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            return Err(text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
