//! Reading the folder one descriptor-relative open at a time (Unix): see
//! [`super`]'s invariant.

use std::{
    io::Read,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::Path,
};

use crate::integrity::{
    host_fs::{Kind, open_dir, open_regular_at},
    tree_walk::{Enter, Entry, walk},
};
use crate::skills::{
    error::SkillError,
    intake::{Intake, IntakeLimits, checked_path},
    tree::SkillTree,
};

/// Whether OS user `uid` may read what `entry` is (owner with read, or
/// read/search for others; root always).
fn readable_by(entry: &Entry, uid: u32) -> bool {
    let mode = entry.stat.st_mode;
    let (own, others) = match entry.kind {
        Kind::Directory => (0o500, 0o005),
        _ => (0o400, 0o004),
    };
    uid == 0 || (entry.stat.st_uid == uid && mode & own == own) || mode & others == others
}

/// Refuses unless OS user `uid` may pass through every folder above
/// `path` (search permission as owner or as anyone; group and ACL grants
/// are not counted, so this refuses rather than guesses).
fn check_reachable(path: &Path, uid: u32) -> Result<(), SkillError> {
    if uid == 0 {
        return Ok(());
    }
    let mut above: Vec<&Path> = path.ancestors().skip(1).collect();
    above.reverse();
    for ancestor in above {
        let stat = nix::sys::stat::lstat(ancestor)
            .map_err(|err| SkillError::BadArchive(format!("{}: {err}", ancestor.display())))?;
        let mode = stat.st_mode;
        if !((stat.st_uid == uid && mode & 0o100 != 0) || mode & 0o001 != 0) {
            return Err(SkillError::Refused(format!(
                "{}: you (uid {uid}) cannot reach folders below it",
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// Reads the skill folder at `path` (checked) for OS user `uid`.
pub fn read_folder(path: &Path, uid: u32, limits: IntakeLimits) -> Result<SkillTree, SkillError> {
    let shown = path.display().to_string();
    check_reachable(path, uid)?;
    let root: OwnedFd =
        open_dir(path).map_err(|err| SkillError::BadArchive(format!("{shown}: {err}")))?;
    let root_stat = nix::sys::stat::fstat(&root)
        .map_err(|err| SkillError::BadArchive(format!("{shown}: {err}")))?;
    if uid != 0 && root_stat.st_uid != uid && root_stat.st_mode & 0o005 != 0o005 {
        return Err(SkillError::Refused(format!(
            "{shown}: you (uid {uid}) cannot read this folder"
        )));
    }
    let mut intake = Intake::new(limits);
    let mut failure: Option<SkillError> = None;
    let mut visit = |folder: &OwnedFd, entry: &Entry| -> Enter {
        if failure.is_some() {
            return Enter::No;
        }
        match take(&mut intake, folder, entry, uid) {
            Ok(enter) => enter,
            Err(err) => {
                failure = Some(err);
                Enter::No
            }
        }
    };
    let mut unexamined_at: Option<String> = None;
    let mut unexamined = |relative: &Path, why: crate::integrity::tree_walk::Unexamined| {
        unexamined_at
            .get_or_insert_with(|| format!("{}: cannot be read ({why:?})", relative.display()));
    };
    walk(root, path, &mut visit, &mut unexamined)
        .map_err(|err| SkillError::BadArchive(format!("{shown}: {err}")))?;
    if let Some(err) = failure {
        return Err(err);
    }
    if let Some(what) = unexamined_at {
        return Err(SkillError::BadArchive(what));
    }
    intake.finish()
}

/// Takes one entry into `intake`.
fn take(
    intake: &mut Intake,
    folder: &OwnedFd,
    entry: &Entry,
    uid: u32,
) -> Result<Enter, SkillError> {
    let path = checked_path(entry.relative.as_os_str().as_bytes())?;
    if !readable_by(entry, uid) {
        return Err(SkillError::Refused(format!(
            "{path}: you (uid {uid}) cannot read it"
        )));
    }
    let refuse = |what: &str| {
        Err(SkillError::BadArchive(format!(
            "{path}: {what} are not allowed in a skill"
        )))
    };
    match entry.kind {
        Kind::Directory => return Ok(Enter::Yes),
        Kind::Regular => {}
        Kind::Symlink => return refuse("symbolic links"),
        Kind::Fifo => return refuse("FIFOs"),
        Kind::Socket => return refuse("sockets"),
        Kind::CharDevice | Kind::BlockDevice => return refuse("devices"),
    }
    let size = u64::try_from(entry.stat.st_size).unwrap_or(u64::MAX);
    intake.admit(&path, size)?;
    let name = entry.relative.file_name().unwrap_or_default();
    let file = open_regular_at(folder, name, &entry.relative)
        .map_err(|err| SkillError::BadArchive(format!("{path}: {err}")))?;
    // Judge what was opened, not what was listed: it may have been swapped.
    let opened = Entry {
        relative: entry.relative.clone(),
        kind: Kind::Regular,
        stat: nix::sys::stat::fstat(&file)
            .map_err(|err| SkillError::BadArchive(format!("{path}: {err}")))?,
    };
    if opened.stat.st_nlink > 1 {
        return refuse("files with more than one hard link");
    }
    if !readable_by(&opened, uid) {
        return Err(SkillError::Refused(format!(
            "{path}: you (uid {uid}) cannot read it"
        )));
    }
    let room = intake.room_for_next_file();
    let mut contents = Vec::new();
    file.take(room.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|err| SkillError::BadArchive(format!("{path}: unreadable ({err})")))?;
    if contents.len() as u64 > room {
        return Err(SkillError::TooLarge(format!(
            "{path}: grew past the limits while being read"
        )));
    }
    intake.add(path, opened.stat.st_mode & 0o111 != 0, contents)?;
    Ok(Enter::No)
}
