//! Opening host files and folders one component at a time, relative to the
//! parent, with `O_NOFOLLOW` (Unix): see [`super`]'s invariant.

use std::{
    ffi::{CString, OsStr},
    fs::File,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Component, Path},
};

use nix::{
    errno::Errno,
    fcntl::{AtFlags, OFlag, open, openat},
    sys::stat::{FileStat, Mode, SFlag, fstat, fstatat},
};

use super::{HostFileError, Kind, io};

pub(in crate::integrity) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn file_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

impl Kind {
    /// The kind `stat` describes.
    #[must_use]
    pub fn of(stat: &FileStat) -> Self {
        match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => Self::Directory,
            SFlag::S_IFLNK => Self::Symlink,
            SFlag::S_IFIFO => Self::Fifo,
            SFlag::S_IFSOCK => Self::Socket,
            SFlag::S_IFCHR => Self::CharDevice,
            SFlag::S_IFBLK => Self::BlockDevice,
            _ => Self::Regular,
        }
    }
}

fn c_name(name: &OsStr) -> Result<CString, Errno> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Opens the folder `relative` below `base`, one component at a time,
/// following no link. `shown` names the whole path in errors.
pub fn open_dir_below(
    base: OwnedFd,
    relative: &Path,
    shown: &Path,
) -> Result<OwnedFd, HostFileError> {
    let mut current = base;
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let name = c_name(name).map_err(|err| io(shown, err))?;
        current = match openat(&current, name.as_c_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(HostFileError::Missing(shown.display().to_string())),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let stat = fstatat(&current, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
                return Err(match stat.map(|s| Kind::of(&s)) {
                    Ok(Kind::Symlink) => HostFileError::Symlink {
                        path: shown.display().to_string(),
                        component: name.to_string_lossy().into_owned(),
                    },
                    Ok(kind) => HostFileError::NotRegular {
                        path: shown.display().to_string(),
                        kind: kind.name(),
                    },
                    Err(err) => io(shown, err),
                });
            }
            Err(err) => return Err(io(shown, err)),
        };
    }
    Ok(current)
}

/// Opens the folder at absolute `path` from `/`, following no link.
pub fn open_dir(path: &Path) -> Result<OwnedFd, HostFileError> {
    let root = open(Path::new("/"), dir_flags(), Mode::empty()).map_err(|err| io(path, err))?;
    open_dir_below(root, path, path)
}

/// Opens `name` in `dir` for reading if it is a regular file.
pub fn open_regular_at(dir: impl AsFd, name: &OsStr, shown: &Path) -> Result<File, HostFileError> {
    let c = c_name(name).map_err(|err| io(shown, err))?;
    let fd = match openat(dir, c.as_c_str(), file_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(HostFileError::Missing(shown.display().to_string())),
        Err(Errno::ELOOP) => {
            return Err(HostFileError::Symlink {
                path: shown.display().to_string(),
                component: name.to_string_lossy().into_owned(),
            });
        }
        Err(err) => return Err(io(shown, err)),
    };
    let kind = Kind::of(&fstat(&fd).map_err(|err| io(shown, err))?);
    if kind != Kind::Regular {
        return Err(HostFileError::NotRegular {
            path: shown.display().to_string(),
            kind: kind.name(),
        });
    }
    Ok(File::from(fd))
}

/// Opens the regular file at absolute `path`, following no link anywhere.
pub fn open_regular(path: &Path) -> Result<File, HostFileError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io(path, "not a file path"));
    };
    let dir = open_dir(parent).map_err(|err| match err {
        HostFileError::Missing(_) => HostFileError::Missing(path.display().to_string()),
        HostFileError::Symlink { component, .. } => HostFileError::Symlink {
            path: path.display().to_string(),
            component,
        },
        other => other,
    })?;
    open_regular_at(&dir, name, path)
}
