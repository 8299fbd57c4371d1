//! Real-time drift: inotify on every folder of a container's writable
//! trees (overlay2's upper folder, writable mounts, tmpfs through the
//! container's root), so a new or changed file asks for a sweep of that
//! container within milliseconds instead of at the next poll.
//!
//! Invariant: the watch only ever asks for a sweep — the sweep decides;
//! asks are coalesced and at most one per [`MIN_SPACING`] per container,
//! so a busy container cannot make the monitor sweep without pause; the
//! number of folders watched is bounded ([`MAX_FOLDERS`]) and a queue
//! overflow asks for a sweep, so what the watch misses the poll still
//! sees; links are never followed into.

use std::{
    collections::HashMap,
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor},
};
use tokio::sync::mpsc;

use super::trees::Tree;

/// Folders watched per container at most.
pub const MAX_FOLDERS: usize = 8192;
/// Least time between two asks for the same container.
pub const MIN_SPACING: Duration = Duration::from_millis(250);
/// How long to gather a burst of changes before asking.
const SETTLE: Duration = Duration::from_millis(20);
/// How often the watching thread looks whether it should stop.
const STOP_CHECK_MS: u16 = 250;

/// What a folder is watched for: files created, moved in, closed after
/// writing, or their mode changed; folders created (watched in turn).
fn interesting() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// The host path where `tree` can be watched: a folder tree's top. A file
/// mount is left to the polls (its folder may be a whole home).
#[must_use]
pub fn watch_root(tree: &Tree) -> Option<PathBuf> {
    match tree {
        Tree::Layer { upper, .. } => Some(upper.clone()),
        Tree::Mount { source, .. } => Some(source.clone()),
        Tree::File { .. } => None,
        Tree::Tmpfs { pid, mount } => {
            Some(PathBuf::from(format!("/proc/{pid}/root")).join(mount.trim_start_matches('/')))
        }
    }
}

/// The watch of one container's trees (a thread of its own); stops when
/// dropped.
#[derive(Debug)]
pub struct TreeWatch {
    roots: Vec<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl TreeWatch {
    /// The roots it watches.
    #[must_use]
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }
}

impl Drop for TreeWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Watched folders by watch descriptor.
struct Folders {
    inotify: Inotify,
    paths: HashMap<WatchDescriptor, PathBuf>,
    full: bool,
}

impl Folders {
    /// Watches `folder` and every folder below it, up to the bound.
    fn add_tree(&mut self, folder: &Path) {
        let mut pending = vec![folder.to_path_buf()];
        while let Some(next) = pending.pop() {
            if self.paths.len() >= MAX_FOLDERS {
                if !self.full {
                    self.full = true;
                    tracing::warn!(
                        folder = ?folder,
                        limit = MAX_FOLDERS,
                        "real-time drift watch is full; the rest is seen at each poll"
                    );
                }
                return;
            }
            let Ok(descriptor) = self.inotify.add_watch(&next, interesting()) else {
                continue;
            };
            self.paths.insert(descriptor, next.clone());
            let Ok(entries) = std::fs::read_dir(&next) else {
                continue;
            };
            for entry in entries.flatten() {
                // The entry's own type: a link is never followed.
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
    }

    /// Reads what happened; true when something asks for a sweep.
    fn take_events(&mut self) -> bool {
        let Ok(events) = self.inotify.read_events() else {
            return false;
        };
        let mut changed = false;
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                changed = true;
                continue;
            }
            if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                self.paths.remove(&event.wd);
                continue;
            }
            changed = true;
            let created_folder = event.mask.contains(AddWatchFlags::IN_ISDIR)
                && event
                    .mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
            if created_folder
                && let (Some(parent), Some(name)) = (self.paths.get(&event.wd), &event.name)
            {
                let folder = parent.join(name);
                self.add_tree(&folder);
            }
        }
        changed
    }
}

/// Watches `roots` of `container`; sends its name on `asks` when something
/// changed there (coalesced, spaced). `None` if inotify is unavailable.
pub fn watch(
    container: &str,
    roots: Vec<PathBuf>,
    asks: mpsc::Sender<String>,
) -> Option<TreeWatch> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|err| tracing::warn!(error = %err, "no real-time drift watch (inotify)"))
        .ok()?;
    let mut folders = Folders {
        inotify,
        paths: HashMap::new(),
        full: false,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (name, stopping, watched) = (container.to_owned(), Arc::clone(&stop), roots.clone());
    let started = std::thread::Builder::new()
        .name("occcd-drift-watch".to_owned())
        .spawn(move || {
            for root in &watched {
                folders.add_tree(root);
            }
            // What changed between the sweep that named the trees and the
            // watch being in place is seen by one more sweep.
            if asks.try_send(name.clone()).is_err() && asks.is_closed() {
                return;
            }
            while !stopping.load(Ordering::SeqCst) {
                let mut ready = [PollFd::new(folders.inotify.as_fd(), PollFlags::POLLIN)];
                match poll(&mut ready, PollTimeout::from(STOP_CHECK_MS)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(nix::Error::EINTR) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "real-time drift watch ended");
                        return;
                    }
                }
                if !folders.take_events() {
                    continue;
                }
                // Gather the rest of the burst, ask once, then keep a pause:
                // real waits, on the watch's own thread.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(SETTLE);
                folders.take_events();
                match asks.try_send(name.clone()) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(MIN_SPACING);
            }
        });
    if let Err(err) = started {
        tracing::warn!(error = %err, "no real-time drift watch (thread)");
        return None;
    }
    Some(TreeWatch { roots, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_file_deep_in_a_tree_asks_for_one_sweep() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        let (asks, mut asked) = mpsc::channel(1);
        let _watch = watch("gw", vec![dir.path().to_owned()], asks).unwrap();
        // Once in place, it asks for a sweep.
        let ready = tokio::time::timeout(Duration::from_secs(5), asked.recv()).await;
        assert_eq!(ready.unwrap().as_deref(), Some("gw"));
        // A folder created after the watch began is watched too.
        std::fs::create_dir_all(dir.path().join("a/b/new")).unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), asked.recv()).await;
        assert_eq!(first.unwrap().as_deref(), Some("gw"));
        // The watch's thread keeps real time: wait out its pause.
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(MIN_SPACING + SETTLE).await;
        while asked.try_recv().is_ok() {}
        std::fs::write(dir.path().join("a/b/new/payload"), b"#!/bin/sh\n").unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), asked.recv()).await;
        assert_eq!(second.unwrap().as_deref(), Some("gw"));
    }

    #[tokio::test]
    async fn links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let (asks, mut asked) = mpsc::channel(1);
        let _watch = watch("gw", vec![dir.path().to_owned()], asks).unwrap();
        let ready = tokio::time::timeout(Duration::from_secs(5), asked.recv()).await;
        assert_eq!(ready.unwrap().as_deref(), Some("gw"));
        std::fs::write(outside.path().join("x"), b"x").unwrap();
        let nothing = tokio::time::timeout(Duration::from_millis(300), asked.recv()).await;
        assert!(nothing.is_err(), "a change behind a link is not watched");
    }
}
