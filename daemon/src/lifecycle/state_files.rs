//! Files beside the store that the tools (restore, rekey) make: their names,
//! derived from the database's, and their owner.
//!
//! Invariant: a file put in place of the store gets the owner of the state
//! folder, so a tool run as root leaves a store the daemon's user can open.

use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its file name (`occcd.db` → `occcd.db-wal`).
#[must_use]
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Gives `file` the owner and group of the folder `database` lives in; on
/// error, the path it failed on.
#[cfg(unix)]
pub fn own_like_state_folder(
    file: &Path,
    database: &Path,
) -> Result<(), (PathBuf, std::io::Error)> {
    use std::os::unix::fs::MetadataExt;
    let folder = super::state_folder_of(database);
    let owner = std::fs::metadata(&folder).map_err(|err| (folder.clone(), err))?;
    std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid()))
        .map_err(|err| (file.to_owned(), err))
}
