//! Reading and replacing `openclaw.json` on disk, through a handle on its
//! folder.
//!
//! Invariant: the file is opened by name inside a folder handle with
//! `O_NOFOLLOW | O_NONBLOCK`, so a symlink put in its place is refused (not
//! followed) and a FIFO never blocks; only a regular file of at most the
//! given size is read, with a bound whatever its size claims. A replacement
//! is a new file beside it (`O_EXCL`, created 0600, given the old file's
//! owner and mode), written whole, synced, renamed over the old one and the
//! folder synced — so the file is always the old text or the new one, never
//! a torn mix, and a failed replacement leaves no temporary file behind.

use std::{
    ffi::OsString,
    fs::File,
    io::{Read, Write},
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{OFlag, openat, renameat},
    sys::stat::{Mode, SFlag, fchmod, fstat},
    unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat},
};

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

/// `openclaw.json` (or wherever it is configured), by folder handle and name.
#[derive(Debug)]
pub struct ConfigFile {
    folder: OwnedFd,
    name: OsString,
    path: PathBuf,
}

fn kind(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFDIR => "a folder",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        _ => "a regular file",
    }
}

impl ConfigFile {
    /// Opens the folder of `path` (its last component must not be a
    /// symlink). The file itself is opened at each read.
    pub fn open(path: &Path) -> Result<Self, ConfigFileError> {
        let bad = || ConfigFileError::BadPath(path.to_owned());
        let name = path.file_name().ok_or_else(bad)?.to_owned();
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(bad)?;
        let folder = nix::fcntl::open(
            parent,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|errno| io_error("open the folder of", path, errno))?;
        Ok(Self {
            folder,
            name,
            path: path.to_owned(),
        })
    }

    /// The file's bytes (at most `limit`), or `None` when there is no file.
    pub fn read(&self, limit: usize) -> Result<Option<Vec<u8>>, ConfigFileError> {
        // Refuse what is not a regular file before opening it (opening a
        // device has effects); checked again on the opened descriptor.
        if self.ownership()?.is_none() {
            return Ok(None);
        }
        let fd = match openat(
            self.folder.as_fd(),
            self.name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(ConfigFileError::NotARegularFile {
                    path: self.path.clone(),
                    what: "a symlink",
                });
            }
            Err(errno) => return Err(io_error("open", &self.path, errno)),
        };
        let stat = fstat(fd.as_fd()).map_err(|errno| io_error("inspect", &self.path, errno))?;
        let what = kind(stat.st_mode);
        if what != "a regular file" {
            return Err(ConfigFileError::NotARegularFile {
                path: self.path.clone(),
                what,
            });
        }
        let mut bytes = Vec::new();
        let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        File::from(fd)
            .take(bound)
            .read_to_end(&mut bytes)
            .map_err(|source| self.io("read", source))?;
        if bytes.len() > limit {
            return Err(ConfigFileError::TooLarge {
                path: self.path.clone(),
                limit,
            });
        }
        Ok(Some(bytes))
    }

    /// Replaces the file with `text` (see the module invariant). The owner
    /// and mode are the old file's; `fresh` when there was none. The caller holds the lock that orders writers and has checked
    /// the version it replaces.
    pub fn replace(&self, text: &[u8], fresh: Ownership) -> Result<(), ConfigFileError> {
        let ownership = self.ownership()?.unwrap_or(fresh);
        let temporary = temporary_name(&self.name);
        let fd = openat(
            self.folder.as_fd(),
            temporary.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| io_error("create a temporary file beside", &self.path, errno))?;
        let written = self.fill(fd, text, ownership).and_then(|()| {
            renameat(
                self.folder.as_fd(),
                temporary.as_os_str(),
                self.folder.as_fd(),
                self.name.as_os_str(),
            )
            .map_err(|errno| io_error("rename over", &self.path, errno))
        });
        if let Err(err) = written {
            let _ = unlinkat(
                self.folder.as_fd(),
                temporary.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(err);
        }
        fsync(self.folder.as_fd())
            .map_err(|errno| io_error("sync the folder of", &self.path, errno))
    }

    fn fill(&self, fd: OwnedFd, text: &[u8], owner: Ownership) -> Result<(), ConfigFileError> {
        fchown(
            fd.as_fd(),
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(|errno| io_error("set the owner of", &self.path, errno))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(owner.mode & 0o7777))
            .map_err(|errno| io_error("set the mode of", &self.path, errno))?;
        let mut file = File::from(fd);
        file.write_all(text)
            .map_err(|source| self.io("write", source))?;
        file.sync_all().map_err(|source| self.io("sync", source))
    }

    fn ownership(&self) -> Result<Option<Ownership>, ConfigFileError> {
        let stat = match nix::sys::stat::fstatat(
            self.folder.as_fd(),
            self.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(io_error("inspect", &self.path, errno)),
        };
        let what = kind(stat.st_mode);
        if what != "a regular file" {
            return Err(ConfigFileError::NotARegularFile {
                path: self.path.clone(),
                what,
            });
        }
        Ok(Some(Ownership {
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
        }))
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> ConfigFileError {
        ConfigFileError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

fn io_error(action: &'static str, path: &Path, errno: Errno) -> ConfigFileError {
    ConfigFileError::Io {
        action,
        path: path.to_owned(),
        source: std::io::Error::from(errno),
    }
}

/// `.<name>.occcd-<random hex>`: hidden, and never one of the
/// `openclaw.json.bak.*` names OpenClaw prunes.
fn temporary_name(name: &OsString) -> OsString {
    let mut random = [0u8; 8];
    // OS randomness; on the (theoretical) failure the name is still unique
    // enough for O_EXCL to refuse a clash rather than overwrite.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let mut temporary = OsString::from(".");
    temporary.push(std::ffi::OsStr::from_bytes(name.as_bytes()));
    temporary.push(format!(".occcd-{}", hex::encode(random)));
    temporary
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn me() -> Ownership {
        Ownership {
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
            mode: 0o600,
        }
    }

    #[test]
    fn replacing_keeps_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, "{a: 1}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let file = ConfigFile::open(&path).unwrap();
        assert_eq!(file.read(1024).unwrap().unwrap(), b"{a: 1}");
        file.replace(b"{a: 2} // new", me()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{a: 2} // new");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["openclaw.json"]);
        // No file yet: created with the fresh owner and mode.
        let other = ConfigFile::open(&dir.path().join("new.json")).unwrap();
        assert_eq!(other.read(10).unwrap(), None);
        other.replace(b"{}", me()).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("new.json"))
                .unwrap()
                .mode()
                & 0o7777,
            0o600
        );
    }

    #[test]
    fn a_symlink_or_fifo_in_its_place_is_refused_unfollowed_and_nothing_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root's").unwrap();
        let path = dir.path().join("openclaw.json");
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        let file = ConfigFile::open(&path).unwrap();
        assert!(matches!(
            file.read(1024),
            Err(ConfigFileError::NotARegularFile {
                what: "a symlink",
                ..
            })
        ));
        assert!(matches!(
            file.replace(b"{}", me()),
            Err(ConfigFileError::NotARegularFile {
                what: "a symlink",
                ..
            })
        ));
        assert_eq!(
            std::fs::read(&secret).unwrap(),
            b"root's",
            "the target is untouched"
        );
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            file.read(1024),
            Err(ConfigFileError::NotARegularFile { what: "a FIFO", .. })
        ));
    }

    #[test]
    fn a_file_larger_than_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, vec![b' '; 2048]).unwrap();
        let file = ConfigFile::open(&path).unwrap();
        assert!(matches!(
            file.read(1024),
            Err(ConfigFileError::TooLarge { limit: 1024, .. })
        ));
        assert_eq!(file.read(2048).unwrap().unwrap().len(), 2048);
        assert!(matches!(
            ConfigFile::open(Path::new("/")),
            Err(ConfigFileError::BadPath(_))
        ));
    }
}
