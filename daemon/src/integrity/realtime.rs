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
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

#[cfg(not(target_os = "linux"))]
use tokio::sync::mpsc;

use super::trees::Tree;

#[cfg(target_os = "linux")]
mod inotify;
#[cfg(target_os = "linux")]
pub use inotify::watch;

/// Folders watched per container at most.
pub const MAX_FOLDERS: usize = 8192;
/// Least time between two asks for the same container.
pub const MIN_SPACING: Duration = Duration::from_millis(250);
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

/// Off Linux there is no inotify, and the engine's trees are in its VM:
/// the polls see every change (a little later).
#[cfg(not(target_os = "linux"))]
#[must_use]
pub fn watch(
    _container: &str,
    _roots: Vec<PathBuf>,
    _asks: mpsc::Sender<String>,
) -> Option<TreeWatch> {
    None
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use tokio::sync::mpsc;

    use super::{inotify::SETTLE, *};

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
