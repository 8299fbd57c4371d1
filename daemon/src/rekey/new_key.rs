//! The new key of a rotation: where it is kept until the store is under it,
//! and how an unfinished rotation is found.
//!
//! Invariant: the new key is on disk, complete and synced with its folder,
//! before anything is encrypted under it (written under a temporary name,
//! then renamed into place; a key reused from an interrupted run is synced
//! again); with the key in a key file it is `<key file>.next`; with a
//! systemd credential it is the operator's file, which must be outside the
//! state folder (where the rotation's own files come and go), and
//! `occcd.db.rekey-target` names it (absolute) from before the key exists
//! until the run ends — so a rerun, and the daemon, can say where it is.

use std::path::{Path, PathBuf};

use super::{
    error::RekeyError,
    swap::{file_error, remove_if_present, with_suffix},
};
use crate::{
    config::Config,
    crypto::{KeyError, KeySource, MasterKey, create_key_file, read_key_file, sync_folder},
    lifecycle::state_folder_of,
};

/// Where the new key goes.
#[derive(Debug, Clone)]
pub(super) struct NewKey {
    /// Its file.
    pub(super) path: PathBuf,
    /// Whether the key in use is a systemd credential (the operator puts
    /// the new key there; `path` is theirs).
    pub(super) credential: bool,
    /// The marker naming `path` (credential only).
    marker: Option<PathBuf>,
    /// Where the new key is kept, for the audit entry.
    pub(super) custody: String,
}

/// The marker of a rotation to a key the operator keeps.
fn marker_of(database: &Path) -> PathBuf {
    with_suffix(database, ".rekey-target")
}

/// What shows a rotation of `config`'s store unfinished, if anything, and
/// how to finish it.
#[must_use]
pub fn unfinished_rotation(config: &Config) -> Option<String> {
    let next = with_suffix(&config.store.key_file, ".next");
    if next.exists() {
        return Some(format!("{} exists: run `occcd rekey`", next.display()));
    }
    let marker = marker_of(&config.store.database);
    marker.exists().then(|| match named_by(&marker) {
        Ok(named) => format!(
            "{} names the new key's file: run `occcd rekey --new-key-file {named}` with the \
             credential",
            marker.display()
        ),
        Err(_) => format!("{} exists but cannot be read", marker.display()),
    })
}

/// The file a marker names.
fn named_by(marker: &Path) -> Result<String, RekeyError> {
    std::fs::read_to_string(marker).map_err(file_error(marker))
}

impl NewKey {
    /// Where the new key goes, given where the key in use came from.
    pub(super) fn choose(
        config: &Config,
        source: &KeySource,
        new_key_file: Option<&Path>,
    ) -> Result<Self, RekeyError> {
        let database = &config.store.database;
        match (source, new_key_file) {
            (KeySource::SystemdCredential(_), Some(file)) => {
                let path = std::path::absolute(file).map_err(file_error(file))?;
                let Some(text) = path.to_str().map(str::to_owned) else {
                    return Err(RekeyError::NotNow(format!(
                        "{} is not UTF-8: name another file",
                        path.display()
                    )));
                };
                let folder = state_folder_of(&path);
                let state = state_folder_of(database);
                if folder.canonicalize().ok() == state.canonicalize().ok() {
                    return Err(RekeyError::NotNow(format!(
                        "{} is in occcd's state folder, where the rotation's own files come \
                         and go: name a file elsewhere",
                        path.display()
                    )));
                }
                let marker = marker_of(database);
                let named = match named_by(&marker) {
                    Ok(named) => Some(named),
                    Err(_) if !marker.exists() => None,
                    Err(err) => return Err(err),
                };
                if let Some(named) = &named
                    && *named != text
                {
                    return Err(RekeyError::NotNow(format!(
                        "a rotation to the key in {named} is unfinished: run again with \
                         --new-key-file {named}"
                    )));
                }
                // A file the marker does not name is someone's: never reused.
                if named.is_none() && path.exists() {
                    return Err(RekeyError::NotNow(format!(
                        "{text} exists: name a new file (occcd writes the new key there)"
                    )));
                }
                Ok(Self {
                    custody: format!("new key in {text}, for the systemd credential"),
                    path,
                    credential: true,
                    marker: Some(marker),
                })
            }
            (KeySource::SystemdCredential(path), None) => Err(RekeyError::NotNow(format!(
                "the key comes from the systemd credential {}, which occcd cannot replace: \
                 name a new file for the new key with --new-key-file (then encrypt it into \
                 the credential, see docs/operations.md)",
                path.display()
            ))),
            (_, Some(_)) => Err(RekeyError::NotNow(format!(
                "the key is in the key file {}: the new key replaces it there \
                 (--new-key-file is for a key kept as a systemd credential)",
                config.store.key_file.display()
            ))),
            (_, None) => {
                let marker = marker_of(database);
                if marker.exists() {
                    return Err(RekeyError::NotNow(format!(
                        "a rotation with the key in a systemd credential is unfinished ({} \
                         names its new key): finish it with the credential",
                        marker.display()
                    )));
                }
                let key_file = std::path::absolute(&config.store.key_file)
                    .unwrap_or_else(|_| config.store.key_file.clone());
                Ok(Self {
                    path: with_suffix(&config.store.key_file, ".next"),
                    credential: false,
                    marker: None,
                    custody: format!("key file {}", key_file.display()),
                })
            }
        }
    }

    /// The key an interrupted run left, synced again; `None` when there is
    /// none (or only a torn one, removed, when `may_discard`: the store is
    /// still under the old key, so nothing was encrypted under it).
    pub(super) fn left_over(&self, may_discard: bool) -> Result<Option<MasterKey>, RekeyError> {
        if !self.path.exists() {
            return Ok(None);
        }
        match read_key_file(&self.path) {
            Ok(key) => {
                sync_file_and_folder(&self.path)?;
                Ok(Some(key))
            }
            Err(KeyError::Malformed { .. }) if may_discard && !self.credential => {
                std::fs::remove_file(&self.path).map_err(file_error(&self.path))?;
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Names the new key's file in the marker (credential), before the key
    /// exists or anything is encrypted under it.
    pub(super) fn mark(&self) -> Result<(), RekeyError> {
        match (&self.marker, self.path.to_str()) {
            (Some(marker), Some(text)) => write_synced(marker, text.as_bytes()),
            _ => Ok(()),
        }
    }

    /// Gives up a rotation that failed before the store was replaced (it is
    /// under the old key): the new key goes if this run made it or it is
    /// `.next`, and the marker goes, so nothing holds up the daemon.
    pub(super) fn abandon(&self, created_now: bool) -> Result<(), RekeyError> {
        if created_now || !self.credential {
            remove_if_present(&self.path)?;
        }
        self.finished()
    }

    /// Writes a new random key: under a temporary name, synced, renamed
    /// into place.
    pub(super) fn create(&self) -> Result<MasterKey, RekeyError> {
        let temporary = with_suffix(&self.path, ".occcd-tmp");
        remove_if_present(&temporary)?;
        let key = create_key_file(&temporary)?;
        std::fs::rename(&temporary, &self.path).map_err(file_error(&self.path))?;
        let folder = state_folder_of(&self.path);
        sync_folder(&folder).map_err(file_error(&folder))?;
        Ok(key)
    }

    /// Ends the run: the marker goes.
    pub(super) fn finished(&self) -> Result<(), RekeyError> {
        match &self.marker {
            Some(marker) => remove_if_present(marker),
            None => Ok(()),
        }
    }
}

fn sync_file_and_folder(path: &Path) -> Result<(), RekeyError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(file_error(path))?;
    let folder = state_folder_of(path);
    sync_folder(&folder).map_err(file_error(&folder))
}

/// Writes `bytes` to `path` (0600) through a synced temporary file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), RekeyError> {
    use std::io::Write;
    let temporary = with_suffix(path, ".tmp");
    remove_if_present(&temporary)?;
    let mut file = crate::crypto::private_file_options()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(file_error(&temporary))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(file_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(file_error(path))?;
    sync_file_and_folder(path)
}
