//! Whether a config file may have changed since it was read, from inotify
//! (Linux): lets a polled read answer from its last copy without opening
//! the file.
//!
//! Invariant: a [`Mark`] returned by [`FileChanges::watch`] — taken before
//! the watches are placed, so before the caller reads the file — differs
//! from every mark taken after a change inotify reports on the file's way:
//! a write, truncation, link count or attribute change of the file (a
//! watch on the file, and on its folder for that name), the file or any
//! folder on its path created, removed, renamed or replaced (a watch on
//! every folder from `/` down, for the next name on the path and for the
//! folder itself), a watch dropped by the kernel, lost or unread events
//! (queue overflow, more than one drain reads), a way not watched whole,
//! or an error reading events (then no mark is given again and every read
//! goes to the disk). Events for other names in those folders change
//! nothing. inotify does not report everything: writes through a shared
//! `mmap` or native AIO, a mount or unmount over the path, changes made by
//! another client of a network filesystem or by a FUSE server, a rename
//! to a differently cased name in a case-insensitive folder — callers
//! bound how long a mark alone is trusted (the editor: one second).
//! [`FileChanges::mark`] never blocks, and paths are resolved outside the
//! lock: a hung filesystem holds only the caller that reads it.

use std::{
    collections::HashMap,
    ffi::OsString,
    path::{Component, Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
};

use nix::{
    errno::Errno,
    sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor},
};

/// A point in the sequence of changes: equal marks, nothing changed between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(u64);

/// One watch on a config file's way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OnTheWay {
    descriptor: WatchDescriptor,
    /// The next name on the path inside this folder; `None`: the file.
    next: Option<OsString>,
}

#[derive(Debug, Default)]
struct State {
    /// Set once reading events failed: no marks from then on.
    failed: bool,
    changes: u64,
    /// Per config path, the watches on its way (folders from `/`, then the
    /// file when there is one).
    ways: HashMap<PathBuf, Vec<OnTheWay>>,
}

/// Changes to the config files, from one inotify instance.
#[derive(Debug)]
pub struct FileChanges {
    /// `None` without inotify: no marks.
    inotify: Option<Inotify>,
    state: Mutex<State>,
}

/// Reads of the event queue per drain; past them the mark moves anyway
/// (a flood of events costs the async thread no more than this).
const MAX_READS_PER_DRAIN: usize = 64;

/// What a folder on the way is watched for: the next name created,
/// removed, moved, changed, written or its attributes changed; the folder
/// itself moved or removed. Every folder gets this same mask, so a folder
/// shared by two configs' ways is never narrowed when watched again.
fn folder_events() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// What the file itself is watched for, by whichever path it is reached.
fn file_events() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl FileChanges {
    /// Watching with a new inotify instance; without one (limits reached,
    /// not permitted) every read goes to the disk.
    #[must_use]
    pub fn new() -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|errno| {
                tracing::warn!(error = %errno, "config reads go to the disk each time: no inotify");
            })
            .ok();
        Self {
            inotify,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The mark now; `None` when unknown (no inotify, reading events
    /// failed, or another caller is draining). Never blocks.
    pub fn mark(&self) -> Option<Mark> {
        let mut state = self.state.try_lock().ok()?;
        self.drain(&mut state)
    }

    /// Places watches on `path`'s way and returns the mark a read of the
    /// file made after this call is valid under; `None` if the way could
    /// not be watched whole. Resolves paths (outside the lock: a hung
    /// filesystem holds only this caller): call off the async threads.
    pub fn watch(&self, path: &Path) -> Option<Mark> {
        let inotify = self.inotify.as_ref()?;
        let mark = self.drain(&mut self.state())?;
        // Events on these watches before they are recorded below come from
        // descriptors no way names yet: they move the mark.
        let (way, whole) = place(inotify, path);
        let mut state = self.state();
        let before = state.ways.insert(path.to_owned(), way);
        for old in before.unwrap_or_default() {
            let used = state
                .ways
                .values()
                .flatten()
                .any(|on| on.descriptor == old.descriptor);
            if !used {
                // Already gone when its inode went: nothing to do.
                let _ = inotify.rm_watch(old.descriptor);
            }
        }
        if !whole {
            // The old way's watches may be gone: nothing kept under an
            // earlier mark stands.
            state.changes = state.changes.wrapping_add(1);
        }
        whole.then_some(mark)
    }

    /// Reads pending events; any that matters (or too many to read) moves
    /// the mark on.
    fn drain(&self, state: &mut State) -> Option<Mark> {
        let inotify = self.inotify.as_ref()?;
        if state.failed {
            return None;
        }
        let (mut changed, mut emptied) = (false, false);
        for _ in 0..MAX_READS_PER_DRAIN {
            match inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    changed |= events.iter().any(|event| state.matters(event));
                }
                Ok(_) | Err(Errno::EAGAIN) => {
                    emptied = true;
                    break;
                }
                Err(Errno::EINTR) => {}
                Err(errno) => {
                    tracing::warn!(error = %errno, "config reads go to the disk each time: inotify failed");
                    state.failed = true;
                    return None;
                }
            }
        }
        if changed || !emptied {
            state.changes = state.changes.wrapping_add(1);
        }
        Some(Mark(state.changes))
    }
}

impl Default for FileChanges {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn matters(&self, event: &InotifyEvent) -> bool {
        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            return true;
        }
        let mut on_the_way = self
            .ways
            .values()
            .flatten()
            .filter(|on| on.descriptor == event.wd)
            .peekable();
        // A descriptor no way names: just placed and not yet recorded (a
        // change there counts), or removed as no longer on the way (its
        // IN_IGNORED does not). A watch just placed is dropped only when
        // its inode goes, and that removal is an event of its folder's
        // watch (or an unmount, its own event).
        if on_the_way.peek().is_none() {
            return !event.mask.contains(AddWatchFlags::IN_IGNORED);
        }
        on_the_way.any(|on| match (&on.next, &event.name) {
            // An event on the file, or on a folder itself (moved, removed,
            // its watch dropped).
            (None, _) | (Some(_), None) => true,
            // An entry of a folder on the way: only the next name.
            (Some(next), Some(name)) => next == name,
        })
    }
}

/// Watches `path`'s folders from `/` down, then the file if there is one;
/// whether all of it is watched (a relative path or a failed watch: not).
fn place(inotify: &Inotify, path: &Path) -> (Vec<OnTheWay>, bool) {
    let mut way = Vec::new();
    if !path.is_absolute() {
        return (way, false);
    }
    let mut folder = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir => folder.push(component),
            Component::Normal(name) => {
                let Ok(descriptor) = inotify.add_watch(&folder, folder_events()) else {
                    return (way, false);
                };
                way.push(OnTheWay {
                    descriptor,
                    next: Some(name.to_owned()),
                });
                folder.push(name);
            }
            _ => return (way, false),
        }
    }
    match inotify.add_watch(path, file_events()) {
        Ok(descriptor) => way.push(OnTheWay {
            descriptor,
            next: None,
        }),
        // No file yet: its folder's watch sees it come.
        Err(Errno::ENOENT) => {}
        Err(_) => return (way, false),
    }
    (way, true)
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
