//! Files that hold secrets (the key file, the bootstrap token): only the
//! daemon's user may read them.
//!
//! Invariant: on Unix such a file is created with mode 0600 (never wider,
//! not even for a moment) and its folder is synced after; on Windows it
//! takes the ACL of its folder — occcd's state folder, which the installer
//! restricts to LocalSystem and Administrators (docs/operations.md).

use std::{fs::OpenOptions, path::Path};

/// Options that create a file readable by the daemon's user only.
#[must_use]
pub fn private_file_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes a new entry in `folder` durable (Unix: fsync of the folder;
/// Windows: NTFS journals its metadata, and a folder cannot be opened as a
/// file to sync it).
pub fn sync_folder(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(folder)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}
