//! The locks on the state folder: who may use the store at the same time.
//!
//! Invariant: `occcd.lock` is held exclusively by the one serving daemon
//! and by a restore; `occcd.store.lock` is held shared by the daemon and by
//! every tool that opens the store beside it (backup, audit verify), and
//! exclusively by a restore — so a restore never runs beside anything that
//! has the store open, and nothing opens it during one. Locks are `flock`s
//! taken without waiting; they end with their holder's process, however it
//! ends.

use std::path::Path;

/// The folder holding `database` (`.` for a bare file name).
#[must_use]
pub fn state_folder_of(database: &Path) -> std::path::PathBuf {
    match database.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Held locks; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    #[cfg(unix)]
    _held: Vec<nix::fcntl::Flock<std::fs::File>>,
}

/// The daemon's lock file.
const DAEMON: &str = "occcd.lock";
/// The store's lock file.
const STORE: &str = "occcd.store.lock";

impl StateLock {
    /// The serving daemon's: the only daemon, the store open.
    pub fn serving(state_folder: &Path) -> Result<Self, String> {
        Self::take(state_folder, &[(DAEMON, true), (STORE, false)])
    }

    /// A tool's that opens the store beside the daemon (not during a restore).
    pub fn reading(state_folder: &Path) -> Result<Self, String> {
        Self::take(state_folder, &[(STORE, false)])
    }

    /// A restore's: nobody else has the store open.
    pub fn replacing(state_folder: &Path) -> Result<Self, String> {
        Self::take(state_folder, &[(DAEMON, true), (STORE, true)])
    }

    #[cfg(unix)]
    fn take(state_folder: &Path, locks: &[(&str, bool)]) -> Result<Self, String> {
        use nix::fcntl::{Flock, FlockArg};
        let mut held = Vec::with_capacity(locks.len());
        for (name, exclusive) in locks {
            let path = state_folder.join(name);
            let file = crate::crypto::private_file_options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            let how = match exclusive {
                true => FlockArg::LockExclusiveNonblock,
                false => FlockArg::LockSharedNonblock,
            };
            let lock = Flock::lock(file, how).map_err(|(_, errno)| match errno {
                nix::errno::Errno::EWOULDBLOCK => format!(
                    "{} is held: occcd is running on this store, or a restore or backup is",
                    path.display()
                ),
                other => format!("{}: {other}", path.display()),
            })?;
            held.push(lock);
        }
        Ok(Self { _held: held })
    }

    /// Windows: the named pipe's first instance already keeps a second
    /// daemon out, and `occcd restore` refuses to run there (not built yet).
    #[cfg(not(unix))]
    fn take(state_folder: &Path, locks: &[(&str, bool)]) -> Result<Self, String> {
        let _ = (state_folder, locks);
        Ok(Self {})
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_excludes_the_daemon_and_readers_and_they_exclude_it() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = StateLock::serving(dir.path()).unwrap();
        assert!(
            StateLock::serving(dir.path())
                .unwrap_err()
                .contains("is held")
        );
        let reader = StateLock::reading(dir.path()).unwrap();
        assert!(StateLock::replacing(dir.path()).is_err());
        drop(daemon);
        assert!(
            StateLock::replacing(dir.path()).is_err(),
            "a reader still has it open"
        );
        drop(reader);
        let restore = StateLock::replacing(dir.path()).unwrap();
        assert!(StateLock::reading(dir.path()).is_err());
        assert!(StateLock::serving(dir.path()).is_err());
        drop(restore);
        assert!(StateLock::serving(dir.path()).is_ok());
    }
}
