//! Files and folders only the user running occcctl may read.
//!
//! Invariant: on Unix files are created 0600 and folders 0700, never wider
//! even for a moment; on Windows they take the ACL of the folder they are
//! made in — the user's own `%LOCALAPPDATA%` (see `token_file`) or a file
//! path the user chose.

use std::{
    fs::{DirBuilder, OpenOptions},
    path::Path,
};

/// Options that create a file only its owner can read (0600 on Unix).
pub fn file_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// A builder of folders only their owner can enter (0700 on Unix).
pub fn folder_builder() -> DirBuilder {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// Narrows an existing folder to its owner (0700 on Unix; on Windows its
/// ACL is left as inherited).
pub fn restrict_folder(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}
