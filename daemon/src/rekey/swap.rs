//! The files of a rotation: the work copy beside the store, and the two
//! renames that put the copy and then the new key in place.
//!
//! Invariant: the work copy is created 0600 and never over a file; it
//! replaces the store only once closed with no write-ahead log, synced,
//! owned like the state folder, and while the store has no write-ahead log
//! of its own (which SQLite would apply to the new file); each rename is
//! followed by a sync of its folder.

use std::path::{Path, PathBuf};

use super::error::RekeyError;
pub(super) use crate::lifecycle::with_suffix;
use crate::{crypto::sync_folder, lifecycle::state_folder_of};

/// Removes `path`; only its absence is not an error.
pub(super) fn remove_if_present(path: &Path) -> Result<(), RekeyError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(file_error(path)(err)),
        _ => Ok(()),
    }
}

pub(super) fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> RekeyError + '_ {
    move |source| RekeyError::File {
        path: path.display().to_string(),
        source,
    }
}

/// `occcd.db.rekey` beside the store: the copy under the new key.
#[derive(Debug)]
pub(super) struct WorkCopy {
    path: PathBuf,
}

impl WorkCopy {
    pub(super) fn new(database: &Path) -> Self {
        Self {
            path: with_suffix(database, ".rekey"),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn path_text(&self) -> Result<&str, RekeyError> {
        self.path
            .to_str()
            .ok_or_else(|| RekeyError::NotNow(format!("{} is not UTF-8", self.path.display())))
    }

    /// Removes what an interrupted run left (never the store: the copy is
    /// the store only after the rename, and then it has this name no more);
    /// fails if one of them stays.
    pub(super) fn remove_leftovers(&self) -> Result<(), RekeyError> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            remove_if_present(&with_suffix(&self.path, suffix))?;
        }
        Ok(())
    }

    /// Creates the copy's file, empty and private (SQLCipher fills it).
    pub(super) fn create_empty(&self) -> Result<(), RekeyError> {
        crate::crypto::private_file_options()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .map(drop)
            .map_err(file_error(&self.path))
    }

    /// Refuses a copy that kept a write-ahead log, and syncs it.
    pub(super) fn check_closed(&self) -> Result<(), RekeyError> {
        if with_suffix(&self.path, "-wal").exists() {
            return Err(RekeyError::NotNow(
                "the new copy kept a write-ahead log after closing; nothing was replaced".into(),
            ));
        }
        std::fs::File::open(&self.path)
            .and_then(|file| file.sync_all())
            .map_err(file_error(&self.path))
    }

    /// The commit point: the copy becomes the store by one rename.
    pub(super) fn put_in_place_of(&self, database: &Path) -> Result<(), RekeyError> {
        let wal = with_suffix(database, "-wal");
        if wal.exists() {
            return Err(RekeyError::NotNow(format!(
                "{} exists after the store was closed (another process has the store open?): \
                 the store is unchanged and still under the old key; run again",
                wal.display()
            )));
        }
        #[cfg(unix)]
        crate::lifecycle::own_like_state_folder(&self.path, database)
            .map_err(|(path, source): (PathBuf, std::io::Error)| file_error(&path)(source))?;
        std::fs::rename(&self.path, database).map_err(file_error(database))
    }

    /// After the commit point: the old store's shared-memory file goes, and
    /// the rename is made durable.
    pub(super) fn sync_after_swap(&self, database: &Path) -> Result<(), RekeyError> {
        remove_if_present(&with_suffix(database, "-shm"))?;
        let folder = state_folder_of(database);
        sync_folder(&folder).map_err(file_error(&folder))
    }
}

/// Puts the new key (`next`) in place of the key file, the last step.
pub(super) fn replace_key_file(next: &Path, key_file: &Path) -> Result<(), RekeyError> {
    std::fs::rename(next, key_file).map_err(file_error(key_file))?;
    let folder = state_folder_of(key_file);
    sync_folder(&folder).map_err(file_error(&folder))
}
