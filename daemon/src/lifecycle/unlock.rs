//! Phase one: find the master key, open the store with it, and open the
//! data root the store keeps wrapped under it.
//!
//! Invariant: a key is generated only when no database exists, and the
//! store proves the key before anything writes (see `crypto::master_key`
//! and `store`); the state folder is created before either; nothing starts
//! while a key rotation is unfinished (`occcd rekey` finishes it).

use std::path::PathBuf;

use super::StartupError;
use crate::{
    config::Config,
    crypto::{KeyRing, KeySource, MasterKey, resolve_master_key},
    rekey::unfinished_rotation,
    store::Store,
};

/// The open store and the keys that open it.
#[derive(Debug)]
pub struct UnlockedStore {
    /// The store.
    pub store: Store,
    /// The master key and data root; drop them as soon as subkeys are
    /// derived.
    pub keys: KeyRing,
    /// Where the master key came from.
    pub key_source: KeySource,
}

/// Finds the key and opens the store.
pub async fn open_store(config: &Config) -> Result<UnlockedStore, StartupError> {
    let database = &config.store.database;
    if let Some(folder) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| StartupError::StateDir {
            path: folder.to_owned(),
            source,
        })?;
    }
    if let Some(next) = unfinished_rotation(config) {
        return Err(StartupError::UnfinishedRotation(next));
    }
    let database_exists = database.exists();
    let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (master, key_source) = resolve_master_key(
        credentials_dir.as_deref(),
        &config.store.credential_name,
        &config.store.key_file,
        database,
        database_exists,
    )?;
    let store = open_with(database, &master, database_exists)
        .await
        .map_err(|source| StartupError::Store {
            key_source: key_source.clone(),
            source,
        })?;
    let wrapped = match store.wrapped_data_root().await {
        Ok(wrapped) => wrapped,
        Err(source) => {
            store.close().await;
            return Err(StartupError::Store { key_source, source });
        }
    };
    match KeyRing::open(master, wrapped.as_deref()) {
        Ok(keys) => Ok(UnlockedStore {
            store,
            keys,
            key_source,
        }),
        Err(_) => {
            store.close().await;
            Err(StartupError::DataRoot(key_source))
        }
    }
}

/// The store at `database` opened (or, when it does not exist, created)
/// with `master`'s database key.
pub(crate) async fn open_with(
    database: &std::path::Path,
    master: &MasterKey,
    exists: bool,
) -> Result<Store, crate::store::StoreError> {
    Store::open(database, &master.database_key(), !exists).await
}
