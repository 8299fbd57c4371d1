//! Daemon configuration: a TOML file where every key has a default, overlaid
//! by command-line flags, with a `--dev` mode that keeps all state in one
//! local folder.
//!
//! Invariant: a [`Config`] that passed [`Config::validate`] names a socket path
//! the kernel accepts and positive time limits; nothing is read from disk here
//! except the config file itself.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

mod socket;
pub use socket::{SYSTEM_SOCKET_PATH, SocketConfig};

/// Most PAM checks `auth.pam.max_concurrent` may allow at once.
const MAX_PAM_CHECKS: usize = 256;

/// Where the packaged daemon looks for its config when `--config` is absent.
#[cfg(all(unix, not(target_os = "macos")))]
pub const SYSTEM_CONFIG_PATH: &str = "/etc/occcd/occcd.toml";
/// Where the daemon looks for its config when `--config` is absent (Windows).
#[cfg(windows)]
pub const SYSTEM_CONFIG_PATH: &str = r"C:\ProgramData\occcd\occcd.toml";
/// Where the packaged daemon looks for its config when `--config` is absent
/// (macOS: no `/etc` of its own for third-party daemons).
#[cfg(target_os = "macos")]
pub const SYSTEM_CONFIG_PATH: &str = "/usr/local/etc/occcd/occcd.toml";

/// The daemon's state folder by default.
#[cfg(all(unix, not(target_os = "macos")))]
pub const SYSTEM_STATE_DIR: &str = "/var/lib/occcd";
/// The daemon's state folder by default (Windows: machine-wide program
/// data, restricted to LocalSystem and Administrators by the installer).
#[cfg(windows)]
pub const SYSTEM_STATE_DIR: &str = r"C:\ProgramData\occcd";
/// The daemon's state folder by default (where macOS keeps daemons' data).
#[cfg(target_os = "macos")]
pub const SYSTEM_STATE_DIR: &str = "/Library/Application Support/occcd";

/// Everything the daemon can be told.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gRPC listening socket.
    pub socket: SocketConfig,
    /// The encrypted database and its key.
    pub store: StoreConfig,
    /// The hash-chained audit log.
    pub audit: AuditConfig,
    /// Log output.
    pub log: LogConfig,
    /// Authentication: password hashing, sessions, tokens.
    pub auth: AuthConfig,
    /// Container integrity monitoring and environment control.
    pub integrity: crate::integrity::IntegrityConfig,
    /// Skill governance: where approved skills go, what is watched.
    pub skills: crate::skills::config::SkillsConfig,
    /// OpenClaw's config editor: versions kept.
    pub openclaw: crate::openclaw::config::OpenClawConfig,
    /// Prometheus metrics (off unless `listen` is set).
    pub metrics: crate::metrics::MetricsConfig,
    /// Security events to journald, syslog and a webhook (all off by default).
    pub events: crate::events::EventsConfig,
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Argon2id passes (t).
    pub argon2_iterations: u32,
    /// Argon2id memory in KiB (m).
    pub argon2_memory_kib: u32,
    /// Argon2id lanes (p).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once (each uses `argon2_memory_kib`).
    pub max_concurrent_hashes: usize,
    /// A session not used for this long ends, in seconds.
    pub idle_timeout_secs: u64,
    /// Every session ends this long after login, in seconds.
    pub session_lifetime_secs: u64,
    /// Re-authentication allows sensitive operations for this long, in seconds.
    pub elevation_window_secs: u64,
    /// Most concurrent sessions per user; the oldest ends beyond it.
    pub max_sessions_per_user: usize,
    /// The first-run bootstrap token expires after this long, in seconds.
    pub bootstrap_token_ttl_secs: u64,
    /// An enrolment token for a new user expires after this long, in seconds.
    pub enrollment_token_ttl_secs: u64,
    /// Consecutive failures that lock an account (delays start at 3).
    pub account_lock_after: u32,
    /// Consecutive failures from one OS user (socket peer) that lock it out.
    pub peer_lock_after: u32,
    /// How long a lock lasts, in seconds (a super-admin can lift it sooner).
    pub lock_secs: u64,
    /// PAM biometric login (`[auth.pam]`).
    pub pam: PamConfig,
}

/// PAM biometric login and elevation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PamConfig {
    /// PAM service name (a file in `/etc/pam.d/`); empty turns PAM login off.
    pub service: String,
    /// A PAM check (finger on the reader, questions answered) must finish
    /// within this many milliseconds.
    pub timeout_ms: u64,
    /// PAM transactions running at once; more are refused.
    pub max_concurrent: usize,
    /// PAM transactions one socket peer (uid) may run at once.
    pub max_per_peer: usize,
    /// Let root (uid 0) run PAM login and elevation for any linked user.
    /// Off: only the linked OS account's own uid may.
    pub allow_root_peer: bool,
}

impl Default for PamConfig {
    fn default() -> Self {
        Self {
            service: String::new(),
            timeout_ms: 30_000,
            max_concurrent: 4,
            max_per_peer: 1,
            allow_root_peer: false,
        }
    }
}

impl PamConfig {
    /// The deadline of one PAM check.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            argon2_iterations: 3,
            argon2_memory_kib: 64 * 1024,
            argon2_parallelism: 4,
            max_concurrent_hashes: 2,
            idle_timeout_secs: 30 * 60,
            session_lifetime_secs: 12 * 60 * 60,
            elevation_window_secs: 5 * 60,
            max_sessions_per_user: 5,
            bootstrap_token_ttl_secs: 60 * 60,
            enrollment_token_ttl_secs: 24 * 60 * 60,
            account_lock_after: 10,
            peer_lock_after: 30,
            lock_secs: 5 * 60,
            pam: PamConfig::default(),
        }
    }
}

/// The SQLCipher database and where its master key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The encrypted database file (`-wal` and `-shm` sit beside it).
    pub database: PathBuf,
    /// Key file used when no systemd credential is present; generated
    /// (mode 0600) on the very first start only.
    pub key_file: PathBuf,
    /// Name of the systemd credential (`$CREDENTIALS_DIRECTORY/<name>`) that,
    /// when present, is used instead of the key file.
    pub credential_name: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database: Path::new(SYSTEM_STATE_DIR).join("occcd.db"),
            key_file: Path::new(SYSTEM_STATE_DIR).join("master.key"),
            credential_name: "occcd-master-key".to_owned(),
        }
    }
}

/// The audit log's writer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How long a caller waits for its entry to be committed before the
    /// daemon logs the failure and carries on, in milliseconds.
    pub write_timeout_ms: u64,
    /// Entries that may wait for the writer before callers are held back.
    pub queue_capacity: usize,
    /// How often the chain head is signed (an Ed25519 checkpoint outside
    /// verifiers check exports against), in milliseconds; exports and
    /// shutdown sign one too.
    pub checkpoint_interval_ms: u64,
    /// Refused calls of one peer uid audited one by one per minute; beyond,
    /// they are counted and the uid's next audited refusal says how many
    /// (`gate::refusal_budget`).
    pub refusals_per_minute_per_uid: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            write_timeout_ms: 2_000,
            queue_capacity: 4_096,
            checkpoint_interval_ms: 300_000,
            refusals_per_minute_per_uid: 120,
        }
    }
}

impl AuditConfig {
    /// [`AuditConfig::checkpoint_interval_ms`] as a duration.
    #[must_use]
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }

    /// [`AuditConfig::write_timeout_ms`] as a duration.
    #[must_use]
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
}

/// Log output settings. `OCCCD_LOG` in the environment overrides `filter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info,occcd=debug`.
    pub filter: String,
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `socket.path`.
        key: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl Config {
    /// Reads `path`, filling every absent key with its default.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    /// Points socket, database and key file into `dir`, for running as a
    /// normal user during development.
    pub fn use_dev_dir(&mut self, dir: &Path) {
        #[cfg(unix)]
        {
            self.socket.path = dir.join("occcd.sock");
        }
        // A pipe lives in no folder: its name is derived from the folder's.
        #[cfg(windows)]
        {
            self.socket.path = occc_peer_identity::dev_pipe_name(dir);
        }
        self.store.database = dir.join("state").join("occcd.db");
        self.store.key_file = dir.join("state").join("master.key");
    }

    /// Checks the values that can be checked without touching the system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.socket
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })?;
        if self.audit.write_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.write_timeout_ms",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.audit.checkpoint_interval_ms < 1_000 {
            return Err(ConfigError::Invalid {
                key: "audit.checkpoint_interval_ms",
                reason: "must be at least 1000 (one second)".to_owned(),
            });
        }
        if self.audit.refusals_per_minute_per_uid == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.refusals_per_minute_per_uid",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.auth.idle_timeout_secs == 0 || self.auth.session_lifetime_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "auth.idle_timeout_secs",
                reason: "session timeouts must be at least 1 second".to_owned(),
            });
        }
        let pam = &self.auth.pam;
        if pam.timeout_ms == 0 || pam.max_concurrent == 0 || pam.max_per_peer == 0 {
            return Err(ConfigError::Invalid {
                key: "auth.pam",
                reason: "timeout_ms, max_concurrent and max_per_peer must be at least 1".to_owned(),
            });
        }
        // Each check holds a thread; a bound also keeps the slot count well
        // inside what a semaphore can hold.
        if pam.max_concurrent > MAX_PAM_CHECKS || pam.max_per_peer > MAX_PAM_CHECKS {
            return Err(ConfigError::Invalid {
                key: "auth.pam",
                reason: format!("max_concurrent and max_per_peer must be at most {MAX_PAM_CHECKS}"),
            });
        }
        if self.audit.queue_capacity == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.queue_capacity",
                reason: "must be at least 1".to_owned(),
            });
        }
        self.skills
            .validate()
            .map_err(|reason| ConfigError::Invalid {
                key: "skills",
                reason,
            })?;
        self.openclaw
            .validate(&self.integrity.containers)
            .map_err(|reason| ConfigError::Invalid {
                key: "openclaw",
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_limits_are_bounded() {
        let mut config = Config::default();
        config.auth.pam.max_concurrent = usize::MAX;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("at most 256"), "{err}");
    }

    #[test]
    fn empty_file_means_all_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn documented_example_parses_to_defaults() {
        let example = include_str!("../../packaging/occcd.toml");
        let config: Config = toml::from_str(example).unwrap();
        assert_eq!(config, Config::default());
    }

    /// Every key the daemon reads (with a default) is in the example, set
    /// or commented out, under its own section.
    #[test]
    fn documented_example_names_every_key() {
        let example = include_str!("../../packaging/occcd.toml");
        let mut documented = std::collections::BTreeSet::new();
        let mut section = String::new();
        for line in example.lines() {
            let line = line.trim_start_matches('#').trim();
            if let Some(header) = line.strip_prefix('[') {
                section = header.trim_matches(|c| c == '[' || c == ']').to_owned();
                documented.insert(section.clone());
            } else if let Some((key, _)) = line.split_once(" = ") {
                documented.insert(format!("{section}.{key}"));
            }
        }
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut missing = Vec::new();
        let mut tables = vec![(String::new(), defaults)];
        while let Some((path, table)) = tables.pop() {
            for (key, value) in table {
                let name = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                match value {
                    toml::Value::Table(inner) => tables.push((name, inner)),
                    _ if !documented.contains(&name) => missing.push(name),
                    _ => {}
                }
            }
        }
        missing.sort();
        assert!(
            missing.is_empty(),
            "not in packaging/occcd.toml: {missing:?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[socket]\npaht = \"/x\"\n").unwrap_err();
        assert!(err.to_string().contains("paht"), "{err}");
    }

    #[test]
    fn overlong_socket_path_is_refused() {
        let mut config = Config::default();
        config.socket.path = PathBuf::from(format!("/{}", "s".repeat(120)));
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("socket.path"), "{err}");
    }

    #[test]
    fn dev_dir_moves_all_state() {
        let mut config = Config::default();
        config.use_dev_dir(Path::new("/tmp/dev"));
        assert_eq!(config.socket.path, Path::new("/tmp/dev/occcd.sock"));
        assert!(config.store.database.starts_with("/tmp/dev"));
        assert!(config.store.key_file.starts_with("/tmp/dev"));
    }
}
