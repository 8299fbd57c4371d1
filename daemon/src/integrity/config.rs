//! `[integrity]`: which containers are watched, how, and what a finding of
//! each severity sets off.
//!
//! Invariant: every default is the safe choice for OpenClaw's gateway
//! container — watched, critical findings quarantine, start refuses root,
//! privileged and Docker-socket containers.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::finding::Severity;

/// Container integrity monitoring.
/// Where the engine answers by default.
#[cfg(unix)]
pub const DEFAULT_ENGINE_SOCKET: &str = "/var/run/docker.sock";
/// Where the engine answers by default (Docker Desktop's named pipe).
#[cfg(windows)]
pub const DEFAULT_ENGINE_SOCKET: &str = r"\\.\pipe\docker_engine";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrityConfig {
    /// Monitor at all.
    pub enabled: bool,
    /// The Docker Engine API socket.
    pub docker_socket: PathBuf,
    /// Checks the engine emits no events for run this often (milliseconds).
    pub poll_interval_ms: u64,
    /// Critical-file and host-file hashes are compared this often (milliseconds).
    pub hash_interval_ms: u64,
    /// A forensic snapshot stops adding artifacts at this many bytes.
    pub snapshot_max_bytes: u64,
    /// Response per severity.
    pub response: ResponsePolicy,
    /// What environment start refuses.
    pub start_policy: StartPolicy,
    /// The containers watched.
    pub containers: Vec<ContainerProfile>,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            docker_socket: PathBuf::from(DEFAULT_ENGINE_SOCKET),
            poll_interval_ms: 10_000,
            hash_interval_ms: 60_000,
            snapshot_max_bytes: 64 * 1024 * 1024,
            response: ResponsePolicy::default(),
            start_policy: StartPolicy::default(),
            containers: vec![ContainerProfile::openclaw_gateway()],
        }
    }
}

impl IntegrityConfig {
    /// [`IntegrityConfig::poll_interval_ms`] as a duration (at least 100 ms).
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(100))
    }

    /// [`IntegrityConfig::hash_interval_ms`] as a duration (at least 100 ms).
    #[must_use]
    pub fn hash_interval(&self) -> Duration {
        Duration::from_millis(self.hash_interval_ms.max(100))
    }

    /// The profile of `name`, or the first when `name` is empty.
    #[must_use]
    pub fn profile(&self, name: &str) -> Option<&ContainerProfile> {
        if name.is_empty() {
            return self.containers.first();
        }
        self.containers.iter().find(|profile| profile.name == name)
    }
}

/// One watched container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerProfile {
    /// The container's name at the engine.
    pub name: String,
    /// The user it must run as (name or uid); empty: any non-root user.
    pub expected_user: String,
    /// The image it should run (reference), for operators; identity is
    /// checked against the pinned image id.
    pub image: String,
    /// Inside the container: changes under these paths are drift.
    pub protected_paths: Vec<String>,
    /// Inside the image: files (or folders) whose SHA-256 is pinned.
    pub critical_paths: Vec<String>,
    /// On the host: bind-mounted files whose SHA-256 is pinned.
    pub watched_host_files: Vec<PathBuf>,
    /// On the host: the container's `openclaw.json`, edited through occcd
    /// (`occc.v1.Config`) and held to the last accepted version.
    pub openclaw_config: Option<PathBuf>,
    /// Inside the container: paths where new executables are not findings
    /// (e.g. a workspace the agent may write scripts to). Empty: none.
    pub drift_exempt_paths: Vec<String>,
    /// Process names allowed to run inside (policy, not a constant:
    /// OpenClaw may run agent tools when its sandbox is off).
    pub process_allowlist: Vec<String>,
}

impl Default for ContainerProfile {
    fn default() -> Self {
        Self::openclaw_gateway()
    }
}

impl ContainerProfile {
    /// OpenClaw's gateway container as its compose file runs it: user
    /// `node`, config and workspace bind-mounted under `/home/node/.openclaw`.
    #[must_use]
    pub fn openclaw_gateway() -> Self {
        Self {
            name: "openclaw-gateway".to_owned(),
            expected_user: "node".to_owned(),
            image: "ghcr.io/openclaw/openclaw:latest".to_owned(),
            protected_paths: ["/app", "/bin", "/sbin", "/usr", "/lib", "/etc"]
                .map(str::to_owned)
                .to_vec(),
            critical_paths: ["/app/openclaw.mjs", "/app/package.json"]
                .map(str::to_owned)
                .to_vec(),
            watched_host_files: Vec::new(),
            openclaw_config: None,
            drift_exempt_paths: Vec::new(),
            process_allowlist: ["node", "docker-init", "tini"].map(str::to_owned).to_vec(),
        }
    }
}

/// What a finding of each severity sets off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Recorded in the findings history only.
    Record,
    /// Recorded and sent to watchers; the status shows it.
    Alert,
    /// Alert, then quarantine the container.
    Quarantine,
}

/// Response per severity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponsePolicy {
    /// For critical findings.
    pub critical: Response,
    /// For high findings.
    pub high: Response,
    /// For medium findings.
    pub medium: Response,
    /// For low and informational findings.
    pub low: Response,
}

impl Default for ResponsePolicy {
    fn default() -> Self {
        Self {
            critical: Response::Quarantine,
            high: Response::Alert,
            medium: Response::Alert,
            low: Response::Record,
        }
    }
}

impl ResponsePolicy {
    /// The response to a finding of `severity`.
    #[must_use]
    pub fn for_severity(&self, severity: Severity) -> Response {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low | Severity::Info => self.low,
        }
    }
}

/// What `StartEnvironment` refuses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartPolicy {
    /// A container configured to run as root.
    pub refuse_root: bool,
    /// A privileged container.
    pub refuse_privileged: bool,
    /// A container with a mount that reaches the host's control: an engine
    /// socket, a folder holding the engine socket, `/run`, `/var/run`,
    /// `/proc`, `/sys`, `/`, or occcd's own state.
    #[serde(alias = "refuse_docker_socket")]
    pub refuse_host_control_mounts: bool,
}

impl Default for StartPolicy {
    fn default() -> Self {
        Self {
            refuse_root: true,
            refuse_privileged: true,
            refuse_host_control_mounts: true,
        }
    }
}

/// Whether container path `path` is one of `roots` or below one.
pub fn under(path: &str, roots: &[String]) -> bool {
    roots.iter().any(|root| {
        let root = root.trim_end_matches('/');
        root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_means_the_path_or_below_it() {
        let roots = ["/app".to_owned(), "/etc/".to_owned()];
        assert!(under("/app", &roots));
        assert!(under("/app/x.js", &roots));
        assert!(under("/etc/passwd", &roots));
        assert!(!under("/application", &roots));
        assert!(!under("/tmp/x", &roots));
    }
}
