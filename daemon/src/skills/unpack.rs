//! Unpacking a submitted archive (tar or zip) into memory, entry by entry,
//! through the intake's checks.
//!
//! Invariant: only regular files and folders are accepted — symlinks, hard
//! links, devices, FIFOs, encrypted or otherwise special entries are
//! refused with the entry's name; no entry is read past the bytes the
//! limits leave (a bomb stops at the limit, whatever its header declares);
//! nothing is written anywhere.

use std::io::{Cursor, Read};

use super::{
    error::SkillError,
    intake::{Intake, IntakeLimits, checked_path},
    tree::SkillTree,
};

/// The archive formats SubmitSkill takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// POSIX/GNU tar (uncompressed).
    Tar,
    /// Zip (stored or deflated).
    Zip,
}

/// Most archive entries (files, folders and metadata) looked at.
const MAX_ENTRIES_PER_FILE: usize = 4;

/// Unpacks `archive` under `limits`.
pub fn unpack(
    format: ArchiveFormat,
    archive: &[u8],
    limits: IntakeLimits,
) -> Result<SkillTree, SkillError> {
    match format {
        ArchiveFormat::Tar => unpack_tar(archive, limits),
        ArchiveFormat::Zip => unpack_zip(archive, limits),
    }
}

/// Reads at most `room` bytes of `reader`; an entry with more is refused.
fn read_bounded(reader: impl Read, room: u64, path: &str) -> Result<Vec<u8>, SkillError> {
    let mut contents = Vec::new();
    reader
        .take(room.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|err| SkillError::BadArchive(format!("{path}: unreadable entry ({err})")))?;
    if contents.len() as u64 > room {
        return Err(SkillError::TooLarge(format!(
            "{path}: unpacks to more bytes than the limits leave ({room})"
        )));
    }
    Ok(contents)
}

fn entry_budget(limits: IntakeLimits) -> usize {
    limits
        .max_files
        .saturating_mul(MAX_ENTRIES_PER_FILE)
        .max(16)
}

fn unpack_tar(archive: &[u8], limits: IntakeLimits) -> Result<SkillTree, SkillError> {
    use tar::EntryType;
    let mut intake = Intake::new(limits);
    let mut tar = tar::Archive::new(Cursor::new(archive));
    let entries = tar
        .entries()
        .map_err(|err| SkillError::BadArchive(format!("not a tar archive: {err}")))?;
    for (index, entry) in entries.enumerate() {
        if index >= entry_budget(limits) {
            return Err(SkillError::TooLarge(format!(
                "more than {} entries in the archive",
                entry_budget(limits)
            )));
        }
        let entry = entry
            .map_err(|err| SkillError::BadArchive(format!("entry {index}: unreadable ({err})")))?;
        let raw = entry.path_bytes().into_owned();
        let path = checked_path(&raw)?;
        let kind = entry.header().entry_type();
        let refuse = |what: &str| {
            Err(SkillError::BadArchive(format!(
                "{path}: {what} entries are not allowed in a skill"
            )))
        };
        match kind {
            EntryType::Directory => continue,
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink => return refuse("symbolic link"),
            EntryType::Link => return refuse("hard link"),
            EntryType::Char | EntryType::Block => return refuse("device"),
            EntryType::Fifo => return refuse("FIFO"),
            _ => return refuse("special (not a regular file or folder)"),
        }
        let mode = entry
            .header()
            .mode()
            .map_err(|err| SkillError::BadArchive(format!("{path}: bad mode ({err})")))?;
        intake.admit(&path, entry.header().size().unwrap_or(u64::MAX))?;
        let contents = read_bounded(entry, intake.room_for_next_file(), &path)?;
        intake.add(path, mode & 0o111 != 0, contents)?;
    }
    intake.finish()
}

fn unpack_zip(archive: &[u8], limits: IntakeLimits) -> Result<SkillTree, SkillError> {
    let mut intake = Intake::new(limits);
    let mut zip = zip::ZipArchive::new(Cursor::new(archive))
        .map_err(|err| SkillError::BadArchive(format!("not a zip archive: {err}")))?;
    if zip.len() > entry_budget(limits) {
        return Err(SkillError::TooLarge(format!(
            "{} entries in the archive, more than {}",
            zip.len(),
            entry_budget(limits)
        )));
    }
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|err| SkillError::BadArchive(format!("entry {index}: unreadable ({err})")))?;
        let path = checked_path(entry.name_raw())?;
        if entry.encrypted() {
            return Err(SkillError::BadArchive(format!(
                "{path}: encrypted entries are not allowed"
            )));
        }
        let mode = entry.unix_mode();
        let file_type = mode.map(|m| m & 0o170_000);
        if entry.is_dir() {
            continue;
        }
        match file_type {
            None | Some(0 | 0o100_000) => {}
            Some(0o120_000) => {
                return Err(SkillError::BadArchive(format!(
                    "{path}: symbolic link entries are not allowed in a skill"
                )));
            }
            Some(0o020_000 | 0o060_000) => {
                return Err(SkillError::BadArchive(format!(
                    "{path}: device entries are not allowed in a skill"
                )));
            }
            Some(0o010_000) => {
                return Err(SkillError::BadArchive(format!(
                    "{path}: FIFO entries are not allowed in a skill"
                )));
            }
            Some(_) => {
                return Err(SkillError::BadArchive(format!(
                    "{path}: special entries are not allowed in a skill"
                )));
            }
        }
        intake.admit(&path, entry.size())?;
        drop(entry);
        let entry = zip
            .by_index(index)
            .map_err(|err| SkillError::BadArchive(format!("{path}: unreadable ({err})")))?;
        let contents = read_bounded(entry, intake.room_for_next_file(), &path)?;
        intake.add(path, mode.is_some_and(|m| m & 0o111 != 0), contents)?;
    }
    intake.finish()
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
