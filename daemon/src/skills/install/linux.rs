//! Installing through descriptors of the skills folder (Linux:
//! `renameat2`): see [`super`]'s invariant.

use std::{
    ffi::CString,
    io::Write,
    os::fd::{AsFd, OwnedFd},
};

use nix::{
    errno::Errno,
    fcntl::{OFlag, RenameFlags, openat, renameat, renameat2},
    sys::stat::{Mode, fchmod, fstatat, mkdirat},
    unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat},
};

use super::{InstallTarget, Occupant};
use crate::{
    integrity::host_fs::open_dir,
    skills::{error::SkillError, tree::SkillTree},
};

fn c(name: &str) -> Result<CString, SkillError> {
    CString::new(name).map_err(|_| SkillError::Disk(format!("{name}: NUL in a name")))
}

fn sys(what: String) -> impl Fn(Errno) -> SkillError {
    move |err| SkillError::Disk(format!("{what}: {err}"))
}

/// The names an install stages under and a removal moves aside to: occcd's
/// by name, so what an interrupted one leaves is removed at start.
const STAGING_PREFIX: &str = ".occcd-staging-";
const REMOVING_PREFIX: &str = ".occcd-removing-";

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

impl InstallTarget {
    fn open(&self) -> Result<OwnedFd, SkillError> {
        open_dir(&self.folder).map_err(|err| SkillError::Disk(format!("skills folder: {err}")))
    }

    /// Whether `name` is taken in the skills folder.
    pub fn occupant(&self, name: &str) -> Result<Occupant, SkillError> {
        let folder = self.open()?;
        match fstatat(
            &folder,
            c(name)?.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(_) => Ok(Occupant::Taken),
            Err(Errno::ENOENT) => Ok(Occupant::Free),
            Err(err) => Err(sys(format!("{}/{name}", self.folder.display()))(err)),
        }
    }

    /// Installs `tree` as folder `name`; `replace` when the folder there
    /// now is one occcd installed (checked by the caller under its lock).
    pub fn install(&self, name: &str, tree: &SkillTree, replace: bool) -> Result<(), SkillError> {
        let folder = self.open()?;
        let staging = format!("{STAGING_PREFIX}{name}");
        // Left over from an interrupted install: ours by name, gone first.
        remove_tree_at(&folder, &staging)?;
        let written = self.write_staging(&folder, &staging, tree);
        let placed = written.and_then(|()| {
            let (from, to) = (c(&staging)?, c(name)?);
            if replace {
                renameat2(
                    &folder,
                    from.as_c_str(),
                    &folder,
                    to.as_c_str(),
                    RenameFlags::RENAME_EXCHANGE,
                )
                .map_err(sys(format!("swapping in {name}")))
            } else {
                // Fails if something appeared meanwhile: never overwritten.
                renameat2(
                    &folder,
                    from.as_c_str(),
                    &folder,
                    to.as_c_str(),
                    RenameFlags::RENAME_NOREPLACE,
                )
                .map_err(sys(format!("placing {name}")))
            }
        });
        // After a swap the staging name holds the old version; else leftovers.
        let cleaned = remove_tree_at(&folder, &staging);
        placed?;
        if let Err(err) = cleaned {
            // Placed all the same: the leftover is named, and the monitor
            // reports it while it holds a SKILL.md.
            tracing::warn!(error = %err, leftover = %staging, "installed, but the replaced version could not be removed");
        }
        fsync(&folder).map_err(sys("syncing the skills folder".to_owned()))
    }

    /// Removes what an install or a removal interrupted by a crash left in
    /// the skills folder (staging and removal folders, whole or partial);
    /// returns their names. Run at start, before any install.
    pub fn remove_leftovers(&self) -> Result<Vec<String>, SkillError> {
        let folder = self.open()?;
        let shown = self.folder.display().to_string();
        let listing = nix::dir::Dir::from_fd(
            nix::unistd::dup(&folder).map_err(sys(format!("listing {shown}")))?,
        )
        .map_err(sys(format!("listing {shown}")))?;
        let mut leftovers = Vec::new();
        for entry in listing {
            let entry = entry.map_err(sys(format!("listing {shown}")))?;
            if let Ok(name) = entry.file_name().to_str()
                && (name.starts_with(STAGING_PREFIX) || name.starts_with(REMOVING_PREFIX))
            {
                leftovers.push(name.to_owned());
            }
        }
        for name in &leftovers {
            remove_tree_at(&folder, name)?;
        }
        if !leftovers.is_empty() {
            fsync(&folder).map_err(sys(format!("syncing {shown}")))?;
        }
        Ok(leftovers)
    }

    /// Removes the installed folder `name` (nothing if absent).
    pub fn uninstall(&self, name: &str) -> Result<(), SkillError> {
        let folder = self.open()?;
        let doomed = format!("{REMOVING_PREFIX}{name}");
        remove_tree_at(&folder, &doomed)?;
        match renameat(
            &folder,
            c(name)?.as_c_str(),
            &folder,
            c(&doomed)?.as_c_str(),
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => return Err(sys(format!("removing {name}"))(err)),
        }
        remove_tree_at(&folder, &doomed)?;
        fsync(&folder).map_err(sys("syncing the skills folder".to_owned()))
    }

    fn write_staging(
        &self,
        folder: &OwnedFd,
        staging: &str,
        tree: &SkillTree,
    ) -> Result<(), SkillError> {
        let (uid, gid) = (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)));
        mkdirat(
            folder,
            c(staging)?.as_c_str(),
            Mode::from_bits_truncate(0o700),
        )
        .map_err(sys(format!("creating {staging}")))?;
        let top = openat(folder, c(staging)?.as_c_str(), dir_flags(), Mode::empty())
            .map_err(sys(format!("opening {staging}")))?;
        // What was opened is what was just made: ours, 0700 (not a folder
        // swapped in by the skills folder's owner in between).
        let made = nix::sys::stat::fstat(&top).map_err(sys(format!("checking {staging}")))?;
        if made.st_uid != nix::unistd::geteuid().as_raw() || made.st_mode & 0o777 != 0o700 {
            return Err(SkillError::Disk(format!(
                "{staging} was replaced while it was being made"
            )));
        }
        for file in tree.files() {
            let (parent, name) = file
                .path
                .rsplit_once('/')
                .map_or(("", file.path.as_str()), |(p, n)| (p, n));
            let dir = open_parent(&top, parent, uid, gid)?;
            let fd = openat(
                dir.as_fd(),
                c(name)?.as_c_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(sys(format!("writing {}", file.path)))?;
            let mut out = std::fs::File::from(fd);
            out.write_all(&file.contents)
                .map_err(|err| SkillError::disk(&file.path, &err))?;
            fchown(&out, uid, gid).map_err(sys(format!("owning {}", file.path)))?;
            fchmod(&out, Mode::from_bits_truncate(file.mode()))
                .map_err(sys(format!("mode of {}", file.path)))?;
        }
        fchown(&top, uid, gid).map_err(sys(format!("owning {staging}")))?;
        fchmod(&top, Mode::from_bits_truncate(0o755)).map_err(sys(format!("mode of {staging}")))?;
        // One flush of the file system for every file and folder written,
        // before the rename makes the skill visible.
        nix::unistd::syncfs(&top).map_err(sys(format!("syncing {staging}")))
    }
}

/// The folder `parent` (relative, `/`-separated) below `top`, each
/// component opened without following links and, when created here, owned
/// by the OpenClaw user with mode 0755. Only the descriptors of one path
/// are open at a time, however many folders the skill has.
fn open_parent(
    top: &OwnedFd,
    parent: &str,
    uid: Option<Uid>,
    gid: Option<Gid>,
) -> Result<OwnedFd, SkillError> {
    let mut current = nix::unistd::dup(top).map_err(sys(format!("opening {parent}")))?;
    if parent.is_empty() {
        return Ok(current);
    }
    for component in parent.split('/') {
        let name = c(component)?;
        let created = match mkdirat(&current, name.as_c_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(err) => return Err(sys(format!("creating {parent}"))(err)),
        };
        let next = openat(&current, name.as_c_str(), dir_flags(), Mode::empty())
            .map_err(sys(format!("opening {parent}")))?;
        if created {
            fchown(&next, uid, gid).map_err(sys(format!("owning {parent}")))?;
            fchmod(&next, Mode::from_bits_truncate(0o755))
                .map_err(sys(format!("mode of {parent}")))?;
        }
        current = next;
    }
    Ok(current)
}

/// Deepest folder `remove_tree_at` descends into (skills nest at most 16).
const MAX_REMOVE_DEPTH: usize = 64;

/// Removes `name` below `dir` and everything in it, following no link
/// (a link is removed, never entered). Absent: nothing to do. Each folder
/// is first made root's and 0700, so its former owner cannot add entries
/// while it is emptied; deeper than [`MAX_REMOVE_DEPTH`] is refused.
pub fn remove_tree_at(dir: &OwnedFd, name: &str) -> Result<(), SkillError> {
    remove_entry_at(dir, c(name)?.as_c_str(), 0)
}

fn remove_entry_at(dir: &OwnedFd, name: &std::ffi::CStr, depth: usize) -> Result<(), SkillError> {
    let shown = name.to_string_lossy().into_owned();
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(err) => return Err(sys(format!("removing {shown}"))(err)),
    }
    if depth >= MAX_REMOVE_DEPTH {
        return Err(SkillError::Disk(format!(
            "{shown}: nested deeper than {MAX_REMOVE_DEPTH} folders; remove it by hand"
        )));
    }
    let child =
        openat(dir, name, dir_flags(), Mode::empty()).map_err(sys(format!("opening {shown}")))?;
    let taken = fchown(&child, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)));
    // Only root can take it (and only root needs to: tests run as users).
    if let Err(err) = taken
        && nix::unistd::geteuid().is_root()
    {
        return Err(sys(format!("taking {shown}"))(err));
    }
    fchmod(&child, Mode::from_bits_truncate(0o700)).map_err(sys(format!("closing {shown}")))?;
    let listing =
        nix::dir::Dir::from_fd(nix::unistd::dup(&child).map_err(sys(format!("listing {shown}")))?)
            .map_err(sys(format!("listing {shown}")))?;
    let mut names: Vec<CString> = Vec::new();
    for entry in listing {
        let entry = entry.map_err(sys(format!("listing {shown}")))?;
        let entry_name = entry.file_name();
        if !matches!(entry_name.to_bytes(), b"." | b"..") {
            names.push(entry_name.to_owned());
        }
    }
    for entry in names {
        remove_entry_at(&child, entry.as_c_str(), depth + 1)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(err) => Err(sys(format!("removing {shown}"))(err)),
    }
}
