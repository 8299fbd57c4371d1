//! Reading host files a container can write to — watched host files in its
//! bind mounts, its writable layer, its tmpfs mounts — without letting the
//! container steer the read.
//!
//! Invariant: no symbolic link is followed below the starting point: every
//! component is opened relative to its parent with `O_NOFOLLOW`, so a
//! component swapped for a link fails instead of redirecting the read; only
//! regular files are read (checked on the opened descriptor, so a swap
//! between look and open cannot bring in a FIFO or a device); opens never
//! block (`O_NONBLOCK`); reads are bounded in bytes; a walk never leaves the
//! tree it started in.

use std::{fs::File, io::Read, path::Path};

use ring::digest::{Context, SHA256};

#[cfg(unix)]
mod open;
#[cfg(unix)]
pub(super) use open::dir_flags;
#[cfg(unix)]
pub use open::{open_dir, open_dir_below, open_regular, open_regular_at};

/// Read size while hashing.
const CHUNK: usize = 256 * 1024;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    Regular,
    /// A folder.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device (overlayfs marks deletions with 0/0 ones).
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl Kind {
    /// In words, e.g. `named pipe (FIFO)`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Regular => "regular file",
            Self::Directory => "folder",
            Self::Symlink => "symbolic link",
            Self::Fifo => "named pipe (FIFO)",
            Self::Socket => "socket",
            Self::CharDevice => "character device",
            Self::BlockDevice => "block device",
        }
    }
}

/// Why a host file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostFileError {
    /// Nothing there.
    #[error("{0} does not exist")]
    Missing(String),
    /// A component of the path is a symbolic link.
    #[error("{path}: {component} is a symbolic link; occcd follows none (configure the real path)")]
    Symlink {
        /// The path asked for.
        path: String,
        /// The component that is a link.
        component: String,
    },
    /// Not a regular file.
    #[error("{path} is a {kind}, not a regular file; occcd does not read it")]
    NotRegular {
        /// The path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than the bound.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The path.
        path: String,
        /// The bound.
        limit: u64,
    },
    /// Any other failure.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What the system said.
        message: String,
    },
}

pub(super) fn io(path: &Path, err: impl std::fmt::Display) -> HostFileError {
    HostFileError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

/// SHA-256 and size of `file`, refusing more than `limit` bytes.
pub fn hash(mut file: File, limit: u64, shown: &Path) -> Result<(String, u64), HostFileError> {
    let mut digest = Context::new(&SHA256);
    let mut buffer = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|err| io(shown, err))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        if size > limit {
            return Err(HostFileError::TooLarge {
                path: shown.display().to_string(),
                limit,
            });
        }
        digest.update(&buffer[..read]);
    }
    Ok((hex::encode(digest.finish()), size))
}

/// The first (up to four) bytes of `file`.
pub fn magic(file: &mut File) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    file.by_ref().take(4).read_to_end(&mut head)?;
    Ok(head)
}

/// Why a file counts as executable, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutableBy {
    /// An execute bit is set.
    Mode,
    /// It starts with the ELF magic.
    Elf,
    /// It starts with `#!`.
    Script,
}

impl ExecutableBy {
    /// In words.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Mode => "execute bit",
            Self::Elf => "ELF binary",
            Self::Script => "#! script",
        }
    }

    /// Judges a regular file by its mode and first bytes.
    #[must_use]
    pub fn judge(mode: u32, head: &[u8]) -> Option<Self> {
        if mode & 0o111 != 0 {
            Some(Self::Mode)
        } else if head.starts_with(b"\x7fELF") {
            Some(Self::Elf)
        } else if head.starts_with(b"#!") {
            Some(Self::Script)
        } else {
            None
        }
    }
}

/// Opens the regular file at absolute `path`, following no link at its
/// last component (Windows: the handle is opened on a reparse point itself,
/// never its target, and must be a plain file; the folders above are not
/// checked one by one as on Unix — see docs/threat-model.md).
#[cfg(windows)]
pub fn open_regular(path: &Path) -> Result<File, HostFileError> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => HostFileError::Missing(path.display().to_string()),
            _ => io(path, err),
        })?;
    let kind = file.metadata().map_err(|err| io(path, err))?.file_type();
    if kind.is_symlink() {
        return Err(HostFileError::Symlink {
            path: path.display().to_string(),
            component: path.display().to_string(),
        });
    }
    if !kind.is_file() {
        return Err(HostFileError::NotRegular {
            path: path.display().to_string(),
            kind: if kind.is_dir() {
                "folder"
            } else {
                "special file"
            },
        });
    }
    Ok(file)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::symlink;

    use nix::sys::stat::Mode;

    use super::*;

    #[test]
    fn links_fifos_and_swapped_folders_are_refused_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "host secret").unwrap();
        let watched = dir.path().join("watched");
        std::fs::create_dir(&watched).unwrap();
        symlink(&secret, watched.join("link")).unwrap();
        nix::unistd::mkfifo(&watched.join("pipe"), Mode::from_bits_truncate(0o600)).unwrap();
        symlink(dir.path(), watched.join("folder-link")).unwrap();
        std::fs::write(watched.join("plain"), "ok").unwrap();

        assert!(matches!(
            open_regular(&watched.join("link")),
            Err(HostFileError::Symlink { .. })
        ));
        // Returns at once: a FIFO is never opened in a way that waits.
        assert!(matches!(
            open_regular(&watched.join("pipe")),
            Err(HostFileError::NotRegular {
                kind: "named pipe (FIFO)",
                ..
            })
        ));
        assert!(matches!(
            open_regular(&watched.join("folder-link").join("secret")),
            Err(HostFileError::Symlink { .. })
        ));
        assert!(matches!(
            open_regular(&watched.join("nothing")),
            Err(HostFileError::Missing(_))
        ));
        let file = open_regular(&watched.join("plain")).unwrap();
        let (sha, size) = hash(file, 10, &watched).unwrap();
        assert_eq!(size, 2);
        assert_eq!(sha.len(), 64);
        let file = open_regular(&watched.join("plain")).unwrap();
        assert!(matches!(
            hash(file, 1, &watched),
            Err(HostFileError::TooLarge { .. })
        ));
    }
}
