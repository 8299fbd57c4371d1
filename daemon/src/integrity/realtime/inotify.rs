//! The inotify watch behind [`super::watch`] (Linux).

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

use super::{MAX_FOLDERS, MIN_SPACING, TreeWatch};

/// How long to gather a burst of changes before asking.
pub(super) const SETTLE: Duration = Duration::from_millis(20);
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
