//! The folder handle, `openat2` and `RENAME_EXCHANGE` behind
//! [`super::ConfigFile`] (Linux): see [`super`]'s invariant.

use std::{
    ffi::{OsStr, OsString},
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
    fcntl::{OFlag, OpenHow, RenameFlags, ResolveFlag, openat, openat2, renameat, renameat2},
    sys::stat::{Mode, SFlag, fchmod, fstat},
    unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat},
};

use super::{ConfigFileError, Ownership};

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
    /// Opens the folder of `path`, refusing a symlink anywhere on the way
    /// (`openat2` with `RESOLVE_NO_SYMLINKS`; on kernels without it, only
    /// the folder itself must not be a link). The file is opened at each
    /// read.
    pub fn open(path: &Path) -> Result<Self, ConfigFileError> {
        let bad = || ConfigFileError::BadPath(path.to_owned());
        let name = path.file_name().ok_or_else(bad)?.to_owned();
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(bad)?;
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        let folder = match openat2(nix::fcntl::AT_FDCWD, parent, how) {
            Err(Errno::ENOSYS) => nix::fcntl::open(parent, flags, Mode::empty()),
            opened => opened,
        }
        .map_err(|errno| match errno {
            // ELOOP: a link on the way; ENOTDIR: the folder itself is a
            // link (O_NOFOLLOW with O_DIRECTORY) or not a folder.
            Errno::ELOOP | Errno::ENOTDIR => ConfigFileError::NotARegularFile {
                path: path.to_owned(),
                what: "reached through a symlink or a non-folder",
            },
            errno => io_error("open the folder of", path, errno),
        })?;
        Ok(Self {
            folder,
            name,
            path: path.to_owned(),
        })
    }

    /// The file's bytes (at most `limit`), or `None` when there is no file.
    pub fn read(&self, limit: usize) -> Result<Option<Vec<u8>>, ConfigFileError> {
        self.read_entry(&self.name.clone(), limit)
    }

    /// The bytes of the folder's entry `name` (a regular file with one
    /// link, at most `limit` bytes), or `None` when there is none.
    fn read_entry(&self, name: &OsStr, limit: usize) -> Result<Option<Vec<u8>>, ConfigFileError> {
        // Refuse what is not a regular file before opening it (opening a
        // device has effects); checked again on the opened descriptor.
        if self.entry_ownership(name)?.is_none() {
            return Ok(None);
        }
        let fd = match openat(
            self.folder.as_fd(),
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(self.not_regular("a symlink")),
            Err(errno) => return Err(io_error("open", &self.path, errno)),
        };
        let stat = fstat(fd.as_fd()).map_err(|errno| io_error("inspect", &self.path, errno))?;
        self.judge(&stat)?;
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

    fn not_regular(&self, what: &'static str) -> ConfigFileError {
        ConfigFileError::NotARegularFile {
            path: self.path.clone(),
            what,
        }
    }

    /// A regular file with no other hard link (a link to a file elsewhere
    /// would make occcd read, and show, that file).
    fn judge(&self, stat: &nix::sys::stat::FileStat) -> Result<(), ConfigFileError> {
        match kind(stat.st_mode) {
            "a regular file" if stat.st_nlink > 1 => {
                Err(self.not_regular("a file with other hard links"))
            }
            "a regular file" => Ok(()),
            what => Err(self.not_regular(what)),
        }
    }

    /// Replaces the file with `text` (see the module invariant) if what it
    /// replaces is still `expected` (`None`: no file); answers whether it
    /// did. The new file is swapped in with `RENAME_EXCHANGE` (or put in
    /// place with `RENAME_NOREPLACE` when there was none) and the file it
    /// replaced is read back and checked: anything else is swapped back, so
    /// a change made meanwhile is never overwritten unseen. The owner and
    /// mode are the old file's (without set-id bits); `fresh` when there
    /// was none.
    pub fn replace_if(
        &self,
        text: &[u8],
        fresh: Ownership,
        expected: Option<&[u8]>,
    ) -> Result<bool, ConfigFileError> {
        let ownership = self.ownership()?;
        if ownership.is_some() != expected.is_some() {
            return Ok(false);
        }
        let temporary = temporary_name(&self.name);
        let fd = openat(
            self.folder.as_fd(),
            temporary.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| io_error("create a temporary file beside", &self.path, errno))?;
        let placed = self
            .fill(fd, text, ownership.unwrap_or(fresh))
            .and_then(|()| {
                let flags = if expected.is_some() {
                    RenameFlags::RENAME_EXCHANGE
                } else {
                    RenameFlags::RENAME_NOREPLACE
                };
                match renameat2(
                    &self.folder,
                    temporary.as_os_str(),
                    &self.folder,
                    self.name.as_os_str(),
                    flags,
                ) {
                    Ok(()) => Ok(Some(true)),
                    // A file appeared meanwhile, or the file went.
                    Err(Errno::EEXIST | Errno::ENOENT) => Ok(None),
                    // No RENAME_EXCHANGE on this filesystem (NFS, older
                    // ZFS, some FUSE): check, then rename over — a change
                    // in between is then not caught.
                    Err(Errno::EINVAL) if expected.is_some() => {
                        if self.read(MAX_CHECKED)?.as_deref() != expected {
                            return Ok(None);
                        }
                        renameat(
                            self.folder.as_fd(),
                            temporary.as_os_str(),
                            self.folder.as_fd(),
                            self.name.as_os_str(),
                        )
                        .map_err(|errno| io_error("rename over", &self.path, errno))?;
                        Ok(Some(false))
                    }
                    Err(errno) => Err(io_error("swap in", &self.path, errno)),
                }
            });
        let swapped = match placed {
            Ok(Some(swapped)) => swapped,
            Ok(None) => {
                self.remove_entry(&temporary);
                return Ok(false);
            }
            Err(err) => {
                self.remove_entry(&temporary);
                return Err(err);
            }
        };
        if let Some(expected) = expected.filter(|_| swapped) {
            // The temporary name now holds what was the file.
            let replaced = self.read_entry(&temporary, expected.len());
            if !matches!(&replaced, Ok(Some(bytes)) if bytes == expected) {
                renameat2(
                    &self.folder,
                    temporary.as_os_str(),
                    &self.folder,
                    self.name.as_os_str(),
                    RenameFlags::RENAME_EXCHANGE,
                )
                .map_err(|errno| io_error("swap back", &self.path, errno))?;
                self.remove_entry(&temporary);
                self.sync_folder()?;
                return Ok(false);
            }
            self.remove_entry(&temporary);
        }
        // The new text is in place: a failed folder sync only means the
        // rename may not survive a power cut — reported, not a failed write.
        if let Err(err) = self.sync_folder() {
            tracing::warn!(error = %err, "the OpenClaw config was replaced but its folder could not be synced");
        }
        Ok(true)
    }

    fn remove_entry(&self, name: &OsStr) {
        let _ = unlinkat(self.folder.as_fd(), name, UnlinkatFlags::NoRemoveDir);
    }

    fn sync_folder(&self) -> Result<(), ConfigFileError> {
        fsync(self.folder.as_fd())
            .map_err(|errno| io_error("sync the folder of", &self.path, errno))
    }

    /// What a new file gets when there was none: the folder's owner and
    /// group, mode 0600.
    pub fn fresh_ownership(&self) -> Result<Ownership, ConfigFileError> {
        let stat = fstat(self.folder.as_fd())
            .map_err(|errno| io_error("inspect the folder of", &self.path, errno))?;
        Ok(Ownership {
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: 0o600,
        })
    }

    /// Removes the file (a regular file only; none is fine).
    pub fn remove(&self) -> Result<(), ConfigFileError> {
        if self.ownership()?.is_none() {
            return Ok(());
        }
        unlinkat(
            self.folder.as_fd(),
            self.name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        )
        .map_err(|errno| io_error("remove", &self.path, errno))?;
        self.sync_folder()
    }

    /// Removes temporary files a killed writer left beside the config
    /// (`.<name>.occcd-<hex>`); answers how many.
    pub fn remove_stale_temporaries(&self) -> Result<usize, ConfigFileError> {
        let mut prefix = OsString::from(".");
        prefix.push(&self.name);
        prefix.push(".occcd-");
        // Listed through the folder's own handle, not its path.
        let mut listing = nix::dir::Dir::openat(
            self.folder.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_error("list the folder of", &self.path, errno))?;
        let names: Vec<OsString> = listing
            .iter()
            .flatten()
            .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_owned())
            .collect();
        let mut removed = 0;
        for name in names {
            if name.as_bytes().starts_with(prefix.as_bytes())
                && unlinkat(
                    self.folder.as_fd(),
                    name.as_os_str(),
                    UnlinkatFlags::NoRemoveDir,
                )
                .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn fill(&self, fd: OwnedFd, text: &[u8], owner: Ownership) -> Result<(), ConfigFileError> {
        fchown(
            fd.as_fd(),
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
        )
        .map_err(|errno| io_error("set the owner of", &self.path, errno))?;
        // Never set-id or sticky: only the permission bits carry over.
        fchmod(fd.as_fd(), Mode::from_bits_truncate(owner.mode & 0o777))
            .map_err(|errno| io_error("set the mode of", &self.path, errno))?;
        let mut file = File::from(fd);
        file.write_all(text)
            .map_err(|source| self.io("write", source))?;
        file.sync_all().map_err(|source| self.io("sync", source))
    }

    fn ownership(&self) -> Result<Option<Ownership>, ConfigFileError> {
        self.entry_ownership(&self.name.clone())
    }

    fn entry_ownership(&self, name: &OsStr) -> Result<Option<Ownership>, ConfigFileError> {
        let stat = match nix::sys::stat::fstatat(
            self.folder.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(io_error("inspect", &self.path, errno)),
        };
        self.judge(&stat)?;
        Ok(Some(Ownership {
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o777,
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

/// The largest file the fallback compares (the editor's bound).
const MAX_CHECKED: usize = 1024 * 1024;

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
