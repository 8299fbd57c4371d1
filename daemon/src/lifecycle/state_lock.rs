//! The lock on the state folder: held by a serving daemon for its whole
//! life, and by `occcd restore` while it replaces the store.
//!
//! Invariant: at most one holder at a time (an exclusive `flock` on
//! `occcd.lock` in the state folder, taken without waiting), so a restore
//! never runs beside a daemon and a daemon never starts during a restore;
//! the lock ends with its holder's process, however that ends.

use std::path::Path;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    #[cfg(unix)]
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl StateLock {
    /// Takes the lock of `state_folder`, or says who holds it.
    #[cfg(unix)]
    pub fn acquire(state_folder: &Path) -> Result<Self, String> {
        let path = state_folder.join("occcd.lock");
        let file = crate::crypto::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| format!("{}: {err}", path.display()))?;
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| match errno {
                nix::errno::Errno::EWOULDBLOCK => format!(
                    "{} is held: occcd is running on this store, or a restore is",
                    path.display()
                ),
                other => format!("{}: {other}", path.display()),
            })?;
        Ok(Self { _held: held })
    }

    /// Windows: the named pipe's first instance already keeps a second
    /// daemon out, and `occcd restore` refuses to run there (not built yet).
    #[cfg(not(unix))]
    pub fn acquire(state_folder: &Path) -> Result<Self, String> {
        let _ = state_folder;
        Ok(Self {})
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_free_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        assert!(
            StateLock::acquire(dir.path())
                .unwrap_err()
                .contains("is held")
        );
        drop(first);
        assert!(StateLock::acquire(dir.path()).is_ok());
    }
}
