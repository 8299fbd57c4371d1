//! `occcd rekey`: put the store under a new master key while the daemon is
//! stopped (docs/operations.md, Key custody and rotation).
//!
//! Invariant: the store file is replaced by one rename, and only by a copy
//! that is complete under the new key — exported by SQLCipher under the new
//! database key, every sealed value re-sealed and the data root wrapped
//! under the new key in one transaction, the rotation audited, the copy
//! closed with no write-ahead log — and only after the new key is on disk
//! (synced). So a kill at any instant leaves a store that opens with the
//! old key or the new one, never both and never neither; a rerun sees which
//! and finishes. The old key file is replaced last; while `<key file>.next`
//! exists the daemon does not start. The state folder's locks are held
//! exclusively throughout.

mod error;
mod new_key;
mod swap;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    audit::{AuditEvent, append_offline, checkpoint::CheckpointSigner},
    clock::Clock,
    config::Config,
    crypto::{KeyPurpose, KeyRing, MasterKey, Sealer, read_key_file, resolve_master_key},
    lifecycle::{StateLock, state_folder_of},
    store::{Store, StoreError},
};

pub use error::RekeyError;
use new_key::NewKey;
pub use new_key::unfinished_rotation;
use swap::WorkCopy;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The store was under the old key; it is now under the new one.
    Now {
        /// How many sealed values were re-sealed.
        resealed_values: u64,
    },
    /// An interrupted run had already put the store under the new key;
    /// this run only finished the key file.
    Earlier,
}

/// The outcome and where the new key is.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// What this run did.
    pub rotated: Rotated,
    /// The file holding the key the store opens with now.
    pub new_key_file: PathBuf,
    /// Whether the key came from a systemd credential, which the operator
    /// replaces with the new key (occcd cannot).
    pub credential: bool,
}

/// Rotates the master key of the store `config` names. With the key in a
/// key file, the new key goes to `<key file>.next` and replaces the key
/// file at the end; with a systemd credential, it goes to `new_key_file`
/// (required), for the operator to encrypt into the credential.
pub async fn rekey(
    config: &Config,
    new_key_file: Option<&Path>,
    clock: Arc<dyn Clock>,
) -> Result<Rotation, RekeyError> {
    if cfg!(not(unix)) {
        return Err(RekeyError::NotNow(
            "rotating the master key is not supported on this system yet".to_owned(),
        ));
    }
    let database = config.store.database.clone();
    if !database.exists() {
        return Err(RekeyError::NotNow(format!(
            "no store at {}: nothing to rotate",
            database.display()
        )));
    }
    let _lock = StateLock::replacing(&state_folder_of(&database)).map_err(|err| {
        RekeyError::NotNow(format!(
            "{err}: stop occcd first (systemctl stop occcd.socket occcd.service)"
        ))
    })?;
    let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (old, source) = resolve_master_key(
        credentials_dir.as_deref(),
        &config.store.credential_name,
        &config.store.key_file,
        &database,
        true,
    )?;
    let new_key = NewKey::choose(config, &source, new_key_file)?;
    let work = WorkCopy::new(&database);
    work.path_text()?;
    work.remove_leftovers()?;
    // Spooled backups a killed daemon left are under the old key.
    crate::backup::remove_spool_leftovers(&state_folder_of(&database));
    let old_opens = opens_with(&database, &old).await?;
    let rotated = match (old_opens, new_key.left_over(old_opens)?) {
        // The credential already holds the new key: a rerun after the
        // operator replaced it.
        (true, Some(new)) if new.same_key_as(&old) => Rotated::Earlier,
        (true, left_over) => {
            let (new, created) = match left_over {
                Some(key) => (key, false),
                None => {
                    new_key.mark()?;
                    (new_key.create()?, true)
                }
            };
            match rotate(&database, &work, old, new, &new_key, clock).await {
                Ok(resealed_values) => Rotated::Now { resealed_values },
                Err(Uncommitted(err)) => {
                    // The store is under the old key: nothing is under the
                    // new one, which goes, so the daemon may start.
                    let _ = work.remove_leftovers();
                    new_key.abandon(created)?;
                    return Err(err);
                }
                Err(Committed(err)) => return Err(err),
            }
        }
        (false, Some(new)) if opens_with(&database, &new).await? => Rotated::Earlier,
        (false, _) => {
            return Err(RekeyError::NotNow(format!(
                "the store opens with neither the key in use ({source}) nor a new key in \
                 {}: nothing was changed",
                new_key.path.display()
            )));
        }
    };
    let new_key_file = if new_key.credential {
        new_key.path.clone()
    } else {
        swap::replace_key_file(&new_key.path, &config.store.key_file)?;
        config.store.key_file.clone()
    };
    new_key.finished()?;
    Ok(Rotation {
        rotated,
        new_key_file,
        credential: new_key.credential,
    })
}

/// Whether `key` opens the store (read-only: nothing is written).
async fn opens_with(database: &Path, key: &MasterKey) -> Result<bool, RekeyError> {
    match Store::open_to_check(database, &key.database_key()).await {
        Ok(store) => {
            store.close().await;
            Ok(true)
        }
        Err(StoreError::WrongKey { .. }) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// A rotation that failed before the store was replaced (it is under the
/// old key), or after (it is under the new one).
enum Failed {
    Uncommitted(RekeyError),
    Committed(RekeyError),
}

use Failed::{Committed, Uncommitted};

/// Builds the copy under `new` and puts it in place of the store; returns
/// how many sealed values were re-sealed.
async fn rotate(
    database: &Path,
    work: &WorkCopy,
    old: MasterKey,
    new: MasterKey,
    new_key: &NewKey,
    clock: Arc<dyn Clock>,
) -> Result<u64, Failed> {
    let next = new_key.path.as_path();
    let expected = new.database_key();
    let outcome = build_copy(database, work, old, new, &new_key.custody, clock).await;
    // What is on disk is what the copy is under, before it becomes the store.
    let outcome = outcome.and_then(|resealed| match read_key_file(next) {
        Ok(on_disk) if on_disk.database_key().same_as(&expected) => Ok(resealed),
        Ok(_) => Err(RekeyError::NotNow(format!(
            "{} changed during the rotation: nothing was replaced",
            next.display()
        ))),
        Err(err) => Err(err.into()),
    });
    let resealed = outcome.map_err(Uncommitted)?;
    work.put_in_place_of(database).map_err(Uncommitted)?;
    work.sync_after_swap(database).map_err(Committed)?;
    Ok(resealed)
}

async fn build_copy(
    database: &Path,
    work: &WorkCopy,
    old: MasterKey,
    new: MasterKey,
    custody: &str,
    clock: Arc<dyn Clock>,
) -> Result<u64, RekeyError> {
    let store = Store::open(database, &old.database_key(), false).await?;
    let exported = export(&store, work, old, &new).await;
    store.close().await;
    let old_keys = exported?;
    let old_sealer = sealer(&old_keys)?;
    let (new_keys, wrapped) = old_keys
        .rotated_to(new)
        .map_err(|err| RekeyError::NotNow(format!("cannot wrap the data root: {err}")))?;
    let new_sealer = sealer(&new_keys)?;
    let copy = Store::open(work.path(), &new_keys.derive(KeyPurpose::Database), false).await?;
    let finished = async {
        let resealed = copy
            .reseal_all(&wrapped, |context, sealed| {
                let opened = old_sealer
                    .open(context, sealed)
                    .map_err(|err| err.to_string())?;
                new_sealer
                    .seal(context, &opened)
                    .map_err(|err| err.to_string())
            })
            .await?;
        let (hasher, signer) = CheckpointSigner::of_keys(&new_keys)
            .map_err(|err| RekeyError::NotNow(err.to_string()))?;
        let entry = AuditEvent::MasterKeyRotated {
            resealed_values: resealed,
            new_key_custody: custody.to_owned(),
        };
        append_offline(&copy, &hasher, &signer, clock, entry)
            .await
            .map_err(|err| {
                RekeyError::NotNow(format!("the rotation could not be audited: {err}"))
            })?;
        Ok::<u64, RekeyError>(resealed)
    }
    .await;
    copy.close().await;
    let resealed = finished?;
    work.check_closed()?;
    Ok(resealed)
}

/// The old store's keys, after exporting it under `new`'s database key.
async fn export(
    store: &Store,
    work: &WorkCopy,
    old: MasterKey,
    new: &MasterKey,
) -> Result<KeyRing, RekeyError> {
    let wrapped = store.wrapped_data_root().await?;
    let old_keys = KeyRing::open(old, wrapped.as_deref()).map_err(|_| {
        RekeyError::NotNow(
            "the store's wrapped data root does not open with the key in use: \
             nothing was changed"
                .to_owned(),
        )
    })?;
    work.create_empty()?;
    store
        .export_encrypted(work.path_text()?, &new.database_key())
        .await?;
    Ok(old_keys)
}

fn sealer(keys: &KeyRing) -> Result<Sealer, RekeyError> {
    Sealer::new(&keys.derive(KeyPurpose::Sealing))
        .map_err(|err| RekeyError::NotNow(format!("sealing key unusable: {err}")))
}
