//! Backups handed out over the socket: made like `occcd backup FILE`, into
//! a file of the state folder that is unlinked as soon as it is open.
//!
//! Invariant: one backup at a time; the file exists under its name only
//! while it is written (0600, in the state folder no other user can enter)
//! and is gone from the folder before a byte of it is handed out, so
//! nothing is left behind however the stream ends.

use std::{fs::File, path::PathBuf, sync::Arc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{BackupError, Written, back_up, file_error};
use crate::{audit::checkpoint::CheckpointSigner, clock::Clock, crypto::Subkey, store::Store};

/// What a backup over the socket is made from.
#[derive(Debug)]
pub struct BackupSource {
    store: Store,
    database_key: Subkey,
    signer: Arc<CheckpointSigner>,
    clock: Arc<dyn Clock>,
    folder: PathBuf,
    one_at_a_time: Arc<Semaphore>,
}

/// A backup made and unlinked, open for reading; the slot is held until it
/// is dropped.
#[derive(Debug)]
pub struct Spooled {
    /// The whole backup file.
    pub file: File,
    /// What was written.
    pub written: Written,
    /// Held while the backup is read.
    pub slot: OwnedSemaphorePermit,
}

impl BackupSource {
    /// Backups of `store` (opened with `database_key`), signed by `signer`,
    /// spooled in `folder` (the state folder).
    #[must_use]
    pub fn new(
        store: Store,
        database_key: Subkey,
        signer: Arc<CheckpointSigner>,
        clock: Arc<dyn Clock>,
        folder: PathBuf,
    ) -> Self {
        Self {
            store,
            database_key,
            signer,
            clock,
            folder,
            one_at_a_time: Arc::new(Semaphore::new(1)),
        }
    }

    /// Makes a backup, or says why not (one is being made or read).
    pub async fn spool(&self) -> Result<Spooled, BackupError> {
        let slot = Arc::clone(&self.one_at_a_time)
            .try_acquire_owned()
            .map_err(|_| {
                BackupError::Busy("a backup is being made already; retry when it has finished")
            })?;
        let mut random = [0_u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| BackupError::NotNow("no randomness from the OS".to_owned()))?;
        let target = self
            .folder
            .join(format!(".occcd-backup-{}.tar", hex::encode(random)));
        let written = back_up(
            &self.store,
            &self.database_key,
            &self.signer,
            self.clock.as_ref(),
            &target,
        )
        .await?;
        let file = File::open(&target).map_err(file_error(&target));
        // Unlinked whether or not it opened: never left behind.
        let removed = std::fs::remove_file(&target).map_err(file_error(&target));
        let file = file?;
        removed?;
        Ok(Spooled {
            file,
            written,
            slot,
        })
    }
}
