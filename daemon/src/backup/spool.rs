//! Backups handed out over the socket: made like `occcd backup FILE`, into
//! a file of the state folder that is unlinked as soon as it is open.
//!
//! Invariant: one backup at a time, the slot held from the check for room
//! until the file is read out; the making runs in a task of its own, so a
//! caller that goes away cannot stop it half-way (its work folder is always
//! removed, its export never runs without the slot); the file exists under
//! its name only while it is written (0600, in the state folder no other
//! user can enter) and is gone from the folder before a byte of it is
//! handed out; what a killed daemon left (`.occcd-spool-*`) is removed when
//! the next one starts.

use std::{fs::File, path::PathBuf, sync::Arc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{BackupError, Written, back_up_in, file_error, random_name};
use crate::{audit::checkpoint::CheckpointSigner, clock::Clock, crypto::Subkey, store::Store};

/// Names of what a spool writes in the state folder.
const SPOOL_PREFIX: &str = ".occcd-spool-";
/// Room kept free beyond two copies of the database.
const SPARE_BYTES: u64 = 64 * 1024 * 1024;

/// What a backup over the socket is made from.
#[derive(Debug)]
pub struct BackupSource {
    store: Store,
    database_key: Subkey,
    signer: Arc<CheckpointSigner>,
    clock: Arc<dyn Clock>,
    folder: PathBuf,
    database: PathBuf,
    one_at_a_time: Arc<Semaphore>,
}

/// A backup made and unlinked, open for reading; the slot is held until it
/// is dropped.
#[derive(Debug)]
pub struct Spooled {
    /// The whole backup file.
    pub file: File,
    /// What was written.
    pub written: Written,
    /// Held while the backup is read.
    pub slot: OwnedSemaphorePermit,
}

impl BackupSource {
    /// Backups of `store` (the file `database`, opened with
    /// `database_key`), signed by `signer`, spooled in the state folder
    /// `folder` — where what an earlier daemon left is removed now.
    #[must_use]
    pub fn new(
        store: Store,
        database_key: Subkey,
        signer: Arc<CheckpointSigner>,
        clock: Arc<dyn Clock>,
        database: PathBuf,
    ) -> Self {
        let folder = crate::lifecycle::state_folder_of(&database);
        remove_spool_leftovers(&folder);
        Self {
            store,
            database_key,
            signer,
            clock,
            folder,
            database,
            one_at_a_time: Arc::new(Semaphore::new(1)),
        }
    }

    /// Makes a backup, or says why not (one is being made or read, or there
    /// is no room for it).
    pub async fn spool(self: &Arc<Self>) -> Result<Spooled, BackupError> {
        let slot = Arc::clone(&self.one_at_a_time)
            .try_acquire_owned()
            .map_err(|_| {
                BackupError::Busy("a backup is being made already; retry when it has finished")
            })?;
        self.check_room()?;
        let source = Arc::clone(self);
        tokio::spawn(async move { source.make(slot).await })
            .await
            .map_err(|_| BackupError::NotNow("the backup task ended unexpectedly".into()))?
    }

    async fn make(&self, slot: OwnedSemaphorePermit) -> Result<Spooled, BackupError> {
        let target = self
            .folder
            .join(format!("{SPOOL_PREFIX}{}.tar", random_name()?));
        let written = back_up_in(
            SPOOL_PREFIX,
            &self.store,
            &self.database_key,
            &self.signer,
            self.clock.as_ref(),
            &target,
        )
        .await?;
        let file = File::open(&target).map_err(file_error(&target));
        // Unlinked whether or not it opened: never left behind.
        let removed = std::fs::remove_file(&target).map_err(file_error(&target));
        let file = file?;
        removed?;
        Ok(Spooled {
            file,
            written,
            slot,
        })
    }

    /// Refuses a backup the state folder's file system has no room for: it
    /// holds a copy of the database and the archive of it at once.
    fn check_room(&self) -> Result<(), BackupError> {
        let size = std::fs::metadata(&self.database)
            .map_err(file_error(&self.database))?
            .len();
        let needed = size.saturating_mul(2).saturating_add(SPARE_BYTES);
        match free_bytes(&self.folder)? {
            Some(free) if free < needed => Err(BackupError::NoRoom {
                needed: needed.div_ceil(1 << 20),
                free: free / (1 << 20),
            }),
            _ => Ok(()),
        }
    }
}

/// Bytes an unprivileged writer may still use on `folder`'s file system.
#[cfg(unix)]
fn free_bytes(folder: &std::path::Path) -> Result<Option<u64>, BackupError> {
    let stat = nix::sys::statvfs::statvfs(folder)
        .map_err(|errno| file_error(folder)(std::io::Error::from_raw_os_error(errno as i32)))?;
    #[allow(
        clippy::useless_conversion,
        reason = "fsblkcnt_t is 32 bits on some systems"
    )]
    let free = u64::from(stat.blocks_available()).saturating_mul(stat.fragment_size());
    Ok(Some(free))
}

/// Not measured here (Windows): the backup fails when the disk is full.
#[cfg(not(unix))]
fn free_bytes(_folder: &std::path::Path) -> Result<Option<u64>, BackupError> {
    Ok(None)
}

/// Removes what a spool left in `folder` (a daemon killed while making one).
pub fn remove_spool_leftovers(folder: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(SPOOL_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(err) = removed {
            tracing::warn!(path = %path.display(), error = %err, "cannot remove a spooled backup left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a daemon killed mid-backup left (a spooled copy, a spool
    /// folder) goes at the next start; nothing else in the state folder.
    #[test]
    fn spool_leftovers_are_removed_and_nothing_else() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join(format!("{SPOOL_PREFIX}1234.tar"));
        let dir = folder.path().join(format!("{SPOOL_PREFIX}5678"));
        std::fs::write(&file, "half a backup").unwrap();
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("occcd.db"), "copy").unwrap();
        std::fs::write(folder.path().join("occcd.db"), "the store").unwrap();
        remove_spool_leftovers(folder.path());
        assert!(!file.exists() && !dir.exists());
        assert_eq!(
            std::fs::read(folder.path().join("occcd.db")).unwrap(),
            b"the store"
        );
    }
}
