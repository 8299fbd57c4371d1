//! Phase one: find the master key and open the store with it.
//!
//! Invariant: a key is generated only when no database exists, and the
//! store proves the key before anything writes (see `crypto::master_key`
//! and `store`); the state folder is created before either.

use std::path::PathBuf;

use super::StartupError;
use crate::{
    config::Config,
    crypto::{KeyPurpose, KeySource, MasterKey, resolve_master_key},
    store::Store,
};

/// The open store and the master key that opened it.
#[derive(Debug)]
pub struct UnlockedStore {
    /// The store.
    pub store: Store,
    /// The master key; drop it as soon as subkeys are derived.
    pub master: MasterKey,
    /// Where the key came from.
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
    let database_exists = database.exists();
    let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (master, key_source) = resolve_master_key(
        credentials_dir.as_deref(),
        &config.store.credential_name,
        &config.store.key_file,
        database,
        database_exists,
    )?;
    let store = Store::open(
        database,
        &master.derive(KeyPurpose::Database),
        !database_exists,
    )
    .await
    .map_err(|source| StartupError::Store {
        key_source: key_source.clone(),
        source,
    })?;
    Ok(UnlockedStore {
        store,
        master,
        key_source,
    })
}
