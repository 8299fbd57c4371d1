//! The config files occcd edits, one per watched container, their write
//! locks, and reading one from disk.
//!
//! Invariant: each container has exactly one lock, shared by every write
//! and by the monitor's check of its file; a file is read through its
//! folder's handle without following links, bounded by
//! [`MAX_CONFIG_BYTES`], off the async threads.

use std::{collections::HashMap, sync::Arc};

use tokio::sync::Mutex as AsyncMutex;

use super::{
    config::ConfigTarget,
    document::MAX_CONFIG_BYTES,
    error::ConfigError,
    file::{ConfigFile, FileChanges, Mark},
};

/// The config files and their locks.
#[derive(Debug)]
pub struct ConfigTargets {
    list: Vec<ConfigTarget>,
    /// One per container: held by writes and by the monitor's check.
    locks: HashMap<String, Arc<AsyncMutex<()>>>,
}

impl ConfigTargets {
    /// The files of `list`.
    #[must_use]
    pub fn new(list: Vec<ConfigTarget>) -> Self {
        let locks = list
            .iter()
            .map(|t| (t.container.clone(), Arc::new(AsyncMutex::new(()))))
            .collect();
        Self { list, locks }
    }

    /// The target named `container` (empty: the first).
    pub fn target(&self, container: &str) -> Result<&ConfigTarget, ConfigError> {
        let found = if container.is_empty() {
            self.list.first()
        } else {
            self.list.iter().find(|t| t.container == container)
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.list.iter().map(|t| t.container.as_str()).collect();
            ConfigError::UnknownContainer(if known.is_empty() {
                "no watched container has an openclaw_config in occcd.toml".to_owned()
            } else {
                format!(
                    "no watched container {container:?} with an OpenClaw config; known: {}",
                    known.join(", ")
                )
            })
        })
    }

    /// Every container with a config file.
    #[must_use]
    pub fn all(&self) -> &[ConfigTarget] {
        &self.list
    }

    /// The lock of `target`'s file.
    #[must_use]
    pub fn lock_of(&self, target: &ConfigTarget) -> Arc<AsyncMutex<()>> {
        self.locks
            .get(&target.container)
            .map_or_else(|| Arc::new(AsyncMutex::new(())), Arc::clone)
    }
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConfigError> + Send + 'static,
) -> Result<T, ConfigError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ConfigError::Internal(format!("the config's file task failed: {err}")))?
}

/// The file's bytes now (`None`: no file), read without following links.
pub async fn read_disk(target: &ConfigTarget) -> Result<Option<Vec<u8>>, ConfigError> {
    Ok(open_disk(target).await?.1)
}

/// The file's bytes now (`None`: no file) and the mark they are valid
/// under while `changes` gives the same one (`None`: not watched).
pub(super) async fn read_disk_marked(
    target: &ConfigTarget,
    changes: &Arc<FileChanges>,
) -> Result<(Option<Vec<u8>>, Option<Mark>), ConfigError> {
    let (path, changes) = (target.path.clone(), Arc::clone(changes));
    blocking(move || {
        // Watched (and marked) first: a change after this moves the mark.
        let mark = changes.watch(&path);
        let file = ConfigFile::open(&path).map_err(ConfigError::file)?;
        let bytes = file.read(MAX_CONFIG_BYTES).map_err(ConfigError::file)?;
        Ok((bytes, mark))
    })
    .await
}

/// The file's folder handle and its bytes now (`None`: no file): a write
/// replaces the file through the same handle it read it by.
pub(super) async fn open_disk(
    target: &ConfigTarget,
) -> Result<(ConfigFile, Option<Vec<u8>>), ConfigError> {
    let path = target.path.clone();
    blocking(move || {
        let file = ConfigFile::open(&path).map_err(ConfigError::file)?;
        let bytes = file.read(MAX_CONFIG_BYTES).map_err(ConfigError::file)?;
        Ok((file, bytes))
    })
    .await
}
