//! The pinned trusted state of a container — image identity, its
//! security-relevant settings, SHA-256 of critical files inside the image
//! (read through the archive API) and of watched host files — and how the
//! present is hashed and compared with it (`pin` writes it).
//!
//! Invariant: a comparison names every file that differs, is missing or
//! was added; a host file is hashed only if it is a regular file reached
//! through no link.

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    archive,
    config::ContainerProfile,
    engine::{Engine, EngineError},
    host_fs::{self, HostFileError},
    identity::TrustedExecutables,
};
use crate::{clock::UnixMillis, store::BaselineRow};

/// A file's pinned digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedFile {
    /// Path (inside the container, or on the host).
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// The trusted state of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Configured container name.
    pub container: String,
    /// Image id.
    pub image_id: String,
    /// Registry digests of the image.
    pub repo_digests: Vec<String>,
    /// Security-relevant settings.
    pub settings: serde_json::Value,
    /// Critical files inside the image.
    pub image_files: Vec<PinnedFile>,
    /// Watched host files.
    pub host_files: Vec<PinnedFile>,
    /// The executables the container may run.
    pub trusted: TrustedExecutables,
    /// When.
    pub pinned_at: UnixMillis,
    /// Who.
    pub pinned_by: String,
}

/// The settings a baseline pins and later compares.
#[must_use]
pub fn settings_of(inspect: &ContainerInspectResponse) -> serde_json::Value {
    let host = inspect.host_config.clone().unwrap_or_default();
    let mut mounts: Vec<String> = inspect
        .mounts
        .iter()
        .flatten()
        .map(|mount| {
            format!(
                "{} -> {} ({})",
                mount.source.clone().unwrap_or_default(),
                mount.destination.clone().unwrap_or_default(),
                if mount.rw.unwrap_or(true) { "rw" } else { "ro" }
            )
        })
        .collect();
    mounts.sort();
    let ports: BTreeMap<String, Vec<String>> = host
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(port, bindings)| {
            let mut bound: Vec<String> = bindings
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    format!(
                        "{}:{}",
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default()
                    )
                })
                .collect();
            bound.sort();
            (port, bound)
        })
        .collect();
    json!({
        "user": super::runtime_checks::configured_user(inspect),
        "privileged": host.privileged.unwrap_or(false),
        "cap_add": host.cap_add.unwrap_or_default(),
        "cap_drop": host.cap_drop.unwrap_or_default(),
        "readonly_rootfs": host.readonly_rootfs.unwrap_or(false),
        "security_opt": host.security_opt.unwrap_or_default(),
        "network_mode": host.network_mode.unwrap_or_default(),
        "pid_mode": host.pid_mode.unwrap_or_default(),
        "ipc_mode": host.ipc_mode.unwrap_or_default(),
        "uts_mode": host.uts_mode.unwrap_or_default(),
        "userns_mode": host.userns_mode.unwrap_or_default(),
        "mounts": mounts,
        "devices": host.devices.unwrap_or_default().into_iter().filter_map(|d| d.path_on_host).collect::<Vec<_>>(),
        "memory": host.memory.unwrap_or(0),
        "pids_limit": host.pids_limit.unwrap_or(0),
        "ports": ports,
    })
}

/// Hashes every critical path of `profile` inside `container`.
pub async fn hash_image_files(
    engine: &Engine,
    profile: &ContainerProfile,
    max_bytes: u64,
) -> Result<Vec<PinnedFile>, EngineError> {
    let mut files = Vec::new();
    for path in &profile.critical_paths {
        let hashed = archive::hash_path(engine.docker(), &profile.name, path, max_bytes).await?;
        files.extend(hashed.into_iter().map(|file| PinnedFile {
            path: file.path,
            sha256: file.sha256,
            size: file.size,
        }));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// How long reading one watched host file may take.
const HOST_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// SHA-256 of the watched host file `path` (`None` when it does not exist),
/// read through no link, only if it is a regular file, within a deadline.
pub async fn hash_host_file(
    path: &std::path::Path,
    max_bytes: u64,
) -> Result<Option<PinnedFile>, HostFileError> {
    let owned = path.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        host_fs::open_regular(&owned).and_then(|file| host_fs::hash(file, max_bytes, &owned))
    });
    let name = path.display().to_string();
    let outcome = match tokio::time::timeout(HOST_READ_DEADLINE, read).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(err)) => Err(HostFileError::Io {
            path: name.clone(),
            message: err.to_string(),
        }),
        Err(_) => Err(HostFileError::Io {
            path: name.clone(),
            message: format!("not read within {} s", HOST_READ_DEADLINE.as_secs()),
        }),
    };
    match outcome {
        Ok((sha256, size)) => Ok(Some(PinnedFile {
            path: name,
            sha256,
            size,
        })),
        Err(HostFileError::Missing(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Hashes every watched host file of `profile`.
pub async fn hash_host_files(
    profile: &ContainerProfile,
    max_bytes: u64,
) -> Vec<(String, Result<Option<PinnedFile>, HostFileError>)> {
    let mut hashed = Vec::new();
    for path in &profile.watched_host_files {
        hashed.push((
            path.display().to_string(),
            hash_host_file(path, max_bytes).await,
        ));
    }
    hashed
}

impl Baseline {
    /// As a database row.
    #[must_use]
    pub fn to_row(&self) -> BaselineRow {
        let text = |value: serde_json::Value| value.to_string();
        BaselineRow {
            container: self.container.clone(),
            image_id: self.image_id.clone(),
            repo_digests: text(json!(self.repo_digests)),
            settings: self.settings.to_string(),
            image_files: text(json!(self.image_files)),
            host_files: text(json!(self.host_files)),
            pinned_at: self.pinned_at.0,
            pinned_by: self.pinned_by.clone(),
            trusted_executables: text(json!(self.trusted)),
        }
    }

    /// From a database row.
    pub fn from_row(row: BaselineRow) -> Result<Self, serde_json::Error> {
        Ok(Self {
            repo_digests: serde_json::from_str(&row.repo_digests)?,
            settings: serde_json::from_str(&row.settings)?,
            image_files: serde_json::from_str(&row.image_files)?,
            host_files: serde_json::from_str(&row.host_files)?,
            trusted: serde_json::from_str(&row.trusted_executables)?,
            container: row.container,
            image_id: row.image_id,
            pinned_at: UnixMillis(row.pinned_at),
            pinned_by: row.pinned_by,
        })
    }
}

/// How the current files differ from the pinned ones: (path, what).
#[must_use]
pub fn differences(pinned: &[PinnedFile], current: &[PinnedFile]) -> Vec<(String, &'static str)> {
    let now: BTreeMap<&str, &PinnedFile> = current.iter().map(|f| (f.path.as_str(), f)).collect();
    let then: BTreeMap<&str, &PinnedFile> = pinned.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut changes = Vec::new();
    for (path, file) in &then {
        match now.get(path) {
            None => changes.push(((*path).to_owned(), "missing")),
            Some(current) if current.sha256 != file.sha256 => {
                changes.push(((*path).to_owned(), "changed"));
            }
            Some(_) => {}
        }
    }
    for path in now.keys().filter(|path| !then.contains_key(*path)) {
        changes.push(((*path).to_owned(), "added"));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str) -> PinnedFile {
        PinnedFile {
            path: path.to_owned(),
            sha256: sha.to_owned(),
            size: 1,
        }
    }

    #[test]
    fn differences_name_changed_missing_and_added_files() {
        let pinned = [file("/a", "1"), file("/b", "2"), file("/c", "3")];
        let current = [file("/a", "1"), file("/b", "9"), file("/d", "4")];
        assert_eq!(
            differences(&pinned, &current),
            [
                ("/b".to_owned(), "changed"),
                ("/c".to_owned(), "missing"),
                ("/d".to_owned(), "added")
            ]
        );
        assert!(differences(&pinned, &pinned).is_empty());
    }
}
