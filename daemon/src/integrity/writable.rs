//! Scanning what a container can write (its [`Tree`]s) from the host:
//! every file examined, executables found wherever they are.
//!
//! Invariant: every entry of every writable tree is seen or named as not
//! examined, without a count limit; a file is opened only as a regular file, through no link, and
//! only its first bytes are read unless it is executable (mode, ELF magic or
//! `#!`), whose SHA-256 is then computed up to a bound — a larger one is
//! reported as too large, never skipped; a file unchanged since the last
//! scan (same inode, size, mtime and ctime) is not read again. Blocking:
//! call it off the async runtime.

use std::collections::HashMap;

use serde::Serialize;

use super::{
    config::under,
    tree_walk::{self, Unexamined},
};

#[cfg(unix)]
mod host_scan;
#[cfg(unix)]
pub use host_scan::scan;

/// Paths a scan lists of each kind (protected changes, unexamined); the
/// rest are counted.
pub const LISTED: usize = 50;
/// Files whose verdict a container's scans remember; beyond it, files are
/// read again at each scan (a bound on memory, not on what is seen).
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
const MAX_REMEMBERED: usize = 100_000;

/// An executable file found in a writable tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundExecutable {
    /// Path inside the container.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Why it counts as executable.
    pub by: &'static str,
    /// SHA-256, unless it was too large or unreadable.
    pub sha256: Option<String>,
    /// Why there is no hash.
    pub note: Option<String>,
}

/// What one scan saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Changes in the writable layer under protected paths ("changed /x",
    /// "deleted /x"), the first [`LISTED`].
    pub protected_changes: Vec<String>,
    /// How many there are in all.
    pub protected_total: usize,
    /// Executables in any writable tree.
    pub executables: Vec<FoundExecutable>,
    /// Trees that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Files and folders that could not be examined, with why (the first
    /// [`LISTED`]).
    pub unexamined: Vec<String>,
    /// How many there are in all.
    pub unexamined_total: usize,
    /// Whether something was hidden on purpose: folders nested too deep to
    /// enter, or a tmpfs moved away with a folder put in its place.
    pub hiding: bool,
    /// Entries seen.
    pub entries: usize,
    /// Trees read.
    pub trees: Vec<String>,
}

impl Scan {
    /// Records a change in the writable layer at `path`.
    pub fn layer_change(&mut self, path: &str, deleted: bool, protected: &[String]) {
        if under(path, protected) {
            self.protected_total += 1;
            if self.protected_changes.len() < LISTED {
                let what = if deleted { "deleted" } else { "changed" };
                self.protected_changes.push(format!("{what} {path}"));
            }
        }
    }

    /// Records what could not be examined at `path`.
    pub fn not_examined(&mut self, path: &str, why: &Unexamined) {
        self.unexamined_total += 1;
        self.hiding |= matches!(why, Unexamined::TooDeep | Unexamined::Tampered(_));
        if self.unexamined.len() < LISTED {
            let why = match why {
                Unexamined::TooDeep => {
                    format!("nested deeper than {} folders", tree_walk::MAX_DEPTH)
                }
                Unexamined::Refused(reason) | Unexamined::Tampered(reason) => reason.clone(),
            };
            self.unexamined.push(format!("{path}: {why}"));
        }
    }
}

#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
#[derive(Debug, Clone)]
struct Examined {
    identity: (u64, i64, i64, i64, i64, u64),
    found: Option<FoundExecutable>,
}

/// Verdicts of earlier scans, so unchanged files are not read again.
#[cfg_attr(not(unix), allow(dead_code))] // used by the host reads (Unix)
#[derive(Debug, Default)]
pub struct ExamCache {
    files: HashMap<String, Examined>,
}

/// Off Unix the engine keeps its containers' trees in its VM: none is
/// named ([`super::trees::trees_of`]), so drift is read through the engine
/// API; a tree given anyway is reported unreadable, never passed.
#[cfg(not(unix))]
#[must_use]
pub fn scan(
    trees: &[super::trees::Tree],
    _cache: &mut ExamCache,
    _hash_limit: u64,
    _exempt: &[String],
    _protected: &[String],
) -> Scan {
    let mut result = Scan::default();
    for tree in trees {
        result.unreadable.push((
            tree.mount_point().to_owned(),
            "host trees are read on Unix only".to_owned(),
        ));
    }
    result
}

#[cfg(test)]
#[cfg(unix)]
#[path = "writable_tests.rs"]
mod tests;
