//! Reading and replacing `openclaw.json` on disk, through a handle on its
//! folder.
//!
//! Invariant: the folder is reached without following a symlink anywhere
//! on its path, and the file opened by name inside it with `O_NOFOLLOW |
//! O_NONBLOCK`, so a symlink put in its place (or on the way) is refused,
//! not followed, and a FIFO never blocks; only a regular file with one link
//! and at most the given size is read, with a bound whatever its size
//! claims. A replacement is a new file beside it (`O_EXCL`, created 0600,
//! given the old file's owner and permission bits), written whole, synced,
//! swapped in (`RENAME_EXCHANGE`), and the file it replaced checked against
//! what the caller expected — swapped back if it changed meanwhile — then
//! the folder synced: the file is always the old text or the new one, never
//! a torn mix, a change made meanwhile is never overwritten unseen, and a
//! failed replacement leaves no temporary file behind. [`FileChanges`]
//! tells whether a file may have changed since it was read (inotify on
//! Linux; elsewhere it never knows).

use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod changes;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use changes::{FileChanges, Mark};
#[cfg(target_os = "linux")]
pub use linux::ConfigFile;
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::{ConfigFile, FileChanges, Mark};

/// Why the config file could not be read or replaced.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The configured path has no file name or no folder.
    #[error("{0} is not a path to a file in a folder")]
    BadPath(PathBuf),
    /// A symlink (or something else than a regular file) is where the
    /// config should be.
    #[error("{path} is not a regular file ({what}); it was not followed or read")]
    NotARegularFile {
        /// The config's path.
        path: PathBuf,
        /// What is there instead.
        what: &'static str,
    },
    /// Larger than the bound.
    #[error("{path} holds more than {limit} bytes")]
    TooLarge {
        /// The config's path.
        path: PathBuf,
        /// The bound.
        limit: usize,
    },
    /// The system refused.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The config's path.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// Who owns a file and its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
}

#[cfg(test)]
#[cfg(target_os = "linux")]
#[path = "file_tests.rs"]
mod tests;
