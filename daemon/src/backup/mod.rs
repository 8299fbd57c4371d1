//! Backups of occcd's own store: `occcd backup FILE` while the daemon runs,
//! `occcd restore FILE` while it is stopped (docs/operations.md, Backup).
//!
//! Invariant: a backup is one file — a tar holding `manifest.json` and
//! `occcd.db`, the database as SQLCipher encrypted it under the store's key,
//! copied in one read transaction — created 0600 and never over an existing
//! file; a restore replaces nothing until the whole backup verified
//! (checksum, signature by this installation's key, SQLite and SQLCipher
//! integrity, the audit chain and its checkpoints), keeps the store it
//! replaces beside it, and continues the audit chain with an entry saying
//! so.

pub mod manifest;
mod restore;
mod spool;

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use ring::digest;

pub use manifest::Manifest;
pub use restore::{Restored, restore};
pub use spool::{BackupSource, Spooled, remove_spool_leftovers};

use crate::{audit::checkpoint::CheckpointSigner, clock::Clock, crypto::Subkey, store::Store};

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// Which.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The backup is not one this installation can trust or use.
    #[error("the backup was refused, nothing was replaced: {0}")]
    Refused(String),
    /// The restore cannot run now.
    #[error("{0}")]
    NotNow(String),
    /// Another backup is being made.
    #[error("{0}")]
    Busy(&'static str),
    /// The state folder's file system has too little room for one.
    #[error(
        "a backup needs about {needed} MiB free beside the store, {free} MiB are: free \
         some, or run `occcd backup FILE` on the host to another disk"
    )]
    NoRoom {
        /// MiB needed.
        needed: u64,
        /// MiB free.
        free: u64,
    },
}

/// Names a file error.
pub(crate) fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File {
        path: path.display().to_string(),
        source,
    }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its manifest.
    pub manifest: Manifest,
    /// Bytes of the backup file.
    pub file_bytes: u64,
}

/// Writes a backup of `store` to `target`, which must not exist. The work
/// is done in a folder of its own (0700) beside `target`, which nobody else
/// can place a link in; `target` appears only complete.
pub async fn back_up(
    store: &Store,
    database_key: &Subkey,
    signer: &CheckpointSigner,
    clock: &dyn Clock,
    target: &Path,
) -> Result<Written, BackupError> {
    back_up_in(WORK_PREFIX, store, database_key, signer, clock, target).await
}

/// Names of `occcd backup`'s work folders.
const WORK_PREFIX: &str = ".occcd-backup-";

/// [`back_up`], its work folder named `<work_prefix><random>`.
async fn back_up_in(
    work_prefix: &str,
    store: &Store,
    database_key: &Subkey,
    signer: &CheckpointSigner,
    clock: &dyn Clock,
    target: &Path,
) -> Result<Written, BackupError> {
    if target.exists() {
        return Err(BackupError::NotNow(format!(
            "{} exists: a backup never overwrites a file",
            target.display()
        )));
    }
    let folder = match target.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let work = work_folder(&folder, work_prefix)?;
    let written = write_in(&work, store, database_key, signer, clock, target).await;
    let removing = work.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(removing)).await;
    let written = written?;
    crate::crypto::sync_folder(&folder).map_err(file_error(&folder))?;
    Ok(written)
}

/// 16 random hex digits, for names nobody can guess.
fn random_name() -> Result<String, BackupError> {
    let mut random = [0_u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| BackupError::NotNow("no randomness from the OS".to_owned()))?;
    Ok(hex::encode(random))
}

/// A new folder only this process's user can enter, in `folder`.
fn work_folder(folder: &Path, prefix: &str) -> Result<PathBuf, BackupError> {
    let work = folder.join(format!("{prefix}{}", random_name()?));
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&work).map_err(file_error(&work))?;
    Ok(work)
}

/// Exports into `work`, signs, writes the archive there and links it to
/// `target` (a link fails if `target` appeared meanwhile: never overwritten).
async fn write_in(
    work: &Path,
    store: &Store,
    database_key: &Subkey,
    signer: &CheckpointSigner,
    clock: &dyn Clock,
    target: &Path,
) -> Result<Written, BackupError> {
    let copy = work.join("occcd.db");
    // Created empty first (0600): the store's connections may not create files.
    crate::crypto::private_file_options()
        .write(true)
        .create_new(true)
        .open(&copy)
        .map_err(file_error(&copy))?;
    let copy_text = copy
        .to_str()
        .ok_or_else(|| BackupError::NotNow(format!("{} is not UTF-8", copy.display())))?;
    store.export_encrypted(copy_text, database_key).await?;
    // The copy opens with the key and says where its audit log ends.
    let opened = Store::open_to_check(&copy, database_key).await?;
    let head = opened.last_audit_row().await;
    let wrapped_root = opened.wrapped_data_root().await;
    opened.close().await;
    let hashing = copy.clone();
    let (database_sha256, database_bytes) = blocking(move || sha256_of(&hashing)).await?;
    let mut manifest = Manifest {
        format: manifest::FORMAT.to_owned(),
        occcd_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at_unix_ms: clock.now().0,
        audit_head: head?.map_or(0, |row| row.sequence),
        database_bytes,
        database_sha256,
        data_root_wrapped_hex: wrapped_root?.map(hex::encode),
        public_key_hex: String::new(),
        signature_hex: String::new(),
    };
    manifest.sign(signer);
    let archive = work.join("backup.tar");
    let (signed, target_owned) = (manifest.clone(), target.to_path_buf());
    let file_bytes = blocking(move || {
        write_archive(&archive, &signed, &copy)?;
        std::fs::hard_link(&archive, &target_owned).map_err(file_error(&target_owned))?;
        Ok(std::fs::metadata(&target_owned)
            .map_err(file_error(&target_owned))?
            .len())
    })
    .await?;
    Ok(Written {
        manifest,
        file_bytes,
    })
}

/// Runs file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| BackupError::NotNow("a backup's file work ended unexpectedly".into()))?
}

/// SHA-256 (hex) and size of the file at `path`.
fn sha256_of(path: &Path) -> Result<(String, u64), BackupError> {
    let mut file = File::open(path).map_err(file_error(path))?;
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0; 256 * 1024];
    let mut bytes = 0_u64;
    loop {
        let read = file.read(&mut buffer).map_err(file_error(path))?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((hex::encode(context.finish().as_ref()), bytes))
}

/// Writes the tar of `manifest` and the database at `copy` to `path` (0600).
fn write_archive(path: &Path, manifest: &Manifest, copy: &Path) -> Result<(), BackupError> {
    let file = crate::crypto::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(file_error(path))?;
    let mut archive = tar::Builder::new(file);
    let manifest_bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|err| BackupError::NotNow(format!("manifest: {err}")))?;
    let mut header = tar::Header::new_ustar();
    header.set_size(manifest_bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(manifest.created_at_unix_ms / 1000).unwrap_or(0));
    header.set_cksum();
    archive
        .append_data(&mut header, "manifest.json", manifest_bytes.as_slice())
        .map_err(file_error(path))?;
    let mut database = File::open(copy).map_err(file_error(copy))?;
    let mut header = tar::Header::new_ustar();
    header.set_size(manifest.database_bytes);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(manifest.created_at_unix_ms / 1000).unwrap_or(0));
    header.set_cksum();
    archive
        .append_data(&mut header, "occcd.db", &mut database)
        .map_err(file_error(path))?;
    let mut file = archive.into_inner().map_err(file_error(path))?;
    file.flush().map_err(file_error(path))?;
    file.sync_all().map_err(file_error(path))
}
