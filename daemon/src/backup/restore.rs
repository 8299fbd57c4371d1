//! `occcd restore FILE`: verify a backup completely, then put it in place of
//! the store while the daemon is stopped.
//!
//! Invariant: the state folder's locks are held exclusively throughout (a
//! running daemon or a backup holds one, so a restore cannot run beside
//! them, and neither can start during one); nothing from the backup file is
//! written before its manifest's signature verified, and nothing is read
//! from its database before it matched the signed checksum; the database is
//! checked unmigrated on a connection no statement may write through, then
//! migrated and its schema compared with the one occcd's migrations make;
//! the store is replaced by one rename,
//! only after every check passed and its audit chain gained the
//! `store_restored` entry; newer entries are dropped only when asked; the
//! store it replaces is kept as `occcd.db.replaced-<ms>`.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use ring::digest;

use super::{BackupError, Manifest, file_error, manifest::MAX_MANIFEST_BYTES};
use crate::{
    audit::{
        AuditEvent, ChainHasher, append_offline, checkpoint::CheckpointSigner, verify_chain,
        verify_checkpoints,
    },
    clock::Clock,
    config::Config,
    crypto::{KeyPurpose, KeyRing, MasterKey, Subkey, resolve_master_key},
    lifecycle::{StateLock, state_folder_of, with_suffix},
    store::{Store, StoreError},
};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Where the replaced store's audit log ended (`None`: there was no
    /// store, or it did not open).
    pub replaced_head: Option<i64>,
    /// Where the replaced store was kept.
    pub kept_as: Option<PathBuf>,
}

/// The keys a restore checks with.
struct Keys {
    database: Subkey,
    hasher: Arc<ChainHasher>,
    signer: CheckpointSigner,
}

/// Restores the backup in `file` over the store `config` names; with
/// `accept_loss`, also when the current store has newer entries (or does
/// not open).
pub async fn restore(
    config: &Config,
    file: &Path,
    clock: Arc<dyn Clock>,
    accept_loss: bool,
) -> Result<Restored, BackupError> {
    if cfg!(not(unix)) {
        return Err(BackupError::NotNow(
            "restoring a backup is not supported on this system yet".to_owned(),
        ));
    }
    let database = config.store.database.clone();
    let state = state_folder_of(&database);
    let _lock = StateLock::replacing(&state).map_err(|err| {
        BackupError::NotNow(format!(
            "{err}: stop occcd first (systemctl stop occcd.socket occcd.service)"
        ))
    })?;
    if let Some(unfinished) = crate::rekey::unfinished_rotation(config) {
        return Err(BackupError::NotNow(format!(
            "a master key rotation is unfinished ({unfinished}) first"
        )));
    }
    let master = master_key(config, &database)?;
    let extracted = state.join(format!("restore-{}.db", clock.now().0));
    let outcome = restore_from(master, file, &extracted, &database, clock, accept_loss).await;
    // After a swap the copy is the store: only a failed restore leaves these.
    if outcome.is_err() {
        for leftover in [
            PathBuf::from(&extracted),
            with_suffix(&extracted, "-wal"),
            with_suffix(&extracted, "-shm"),
            with_suffix(&extracted, "-journal"),
        ] {
            let _ = std::fs::remove_file(leftover);
        }
    }
    outcome
}

async fn restore_from(
    master: MasterKey,
    file: &Path,
    extracted: &Path,
    database: &Path,
    clock: Arc<dyn Clock>,
    accept_loss: bool,
) -> Result<Restored, BackupError> {
    let (manifest, keys) = extract(file, extracted, master)?;
    let keys = &keys;
    let check = Store::open_copy_to_check(extracted, &keys.database)
        .await
        .map_err(|err| match err {
            StoreError::WrongKey { .. } => BackupError::Refused(
                "the database does not open with this installation's key".into(),
            ),
            other => BackupError::Refused(format!("the database does not open: {other}")),
        })?;
    let checked = match check_copy(&check, keys, &manifest).await {
        // Before any migration runs on it: the schema of its migration.
        Ok(()) => match unmigrated_schema_difference(&check).await {
            Ok(None) => Ok(()),
            Ok(Some(difference)) => Err(BackupError::Refused(format!(
                "the database's schema is not occcd's (before migrating it): {difference}"
            ))),
            Err(err) => Err(err.into()),
        },
        refused => refused,
    };
    check.close().await;
    checked?;
    let replaced_head = current_head(database, &keys.database).await;
    if !accept_loss {
        refuse_loss(database, &manifest, replaced_head)?;
    }
    let entry = AuditEvent::StoreRestored {
        backup_created_at_unix_ms: manifest.created_at_unix_ms,
        backup_audit_head: manifest.audit_head,
        replaced_audit_head: replaced_head,
        backup_sha256: manifest.database_sha256.clone(),
    };
    let now_ms = clock.now().0;
    // Verified: now migrated to this occcd's schema — which must then be
    // exactly the schema its migrations make — and the entry appended.
    let copy = Store::open(extracted, &keys.database, false).await?;
    let appended = match schema_difference(&copy).await {
        Ok(None) => append(&copy, keys, clock, entry).await,
        Ok(Some(difference)) => Err(BackupError::Refused(format!(
            "the database's schema is not this occcd's: {difference}"
        ))),
        Err(err) => Err(err.into()),
    };
    copy.close().await;
    appended?;
    if with_suffix(extracted, "-wal").exists() {
        return Err(BackupError::NotNow(
            "the restored copy kept a write-ahead log after closing; nothing was replaced".into(),
        ));
    }
    #[cfg(unix)]
    crate::lifecycle::own_like_state_folder(extracted, database)
        .map_err(|(path, source): (PathBuf, std::io::Error)| file_error(&path)(source))?;
    let kept_as = swap(extracted, database, now_ms)?;
    Ok(Restored {
        manifest,
        replaced_head,
        kept_as,
    })
}

/// Refuses to drop entries the current store has and the backup has not,
/// or to replace a store that does not open, unless asked to.
fn refuse_loss(
    database: &Path,
    manifest: &Manifest,
    replaced_head: Option<i64>,
) -> Result<(), BackupError> {
    let made = chrono::DateTime::from_timestamp_millis(manifest.created_at_unix_ms)
        .map_or_else(String::new, |at| at.to_rfc3339());
    match replaced_head {
        Some(head) if head > manifest.audit_head => Err(BackupError::NotNow(format!(
            "the current store's audit log runs to entry {head}, the backup (made {made}) to {}: \
             restoring drops entries {} to {head} and everything changed since — users, \
             password and TOTP changes, revocations, lockouts (the replaced store is kept); \
             run again with --accept-loss to restore anyway",
            manifest.audit_head,
            manifest.audit_head + 1
        ))),
        None if database.exists() => Err(BackupError::NotNow(
            "the current store does not open with this key, so what a restore drops is unknown; \
             run again with --accept-loss to restore anyway (the replaced store is kept)"
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The installation's master key (never a new one).
fn master_key(config: &Config, database: &Path) -> Result<MasterKey, BackupError> {
    let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (master, _) = resolve_master_key(
        credentials_dir.as_deref(),
        &config.store.credential_name,
        &config.store.key_file,
        database,
        true,
    )
    .map_err(|err| BackupError::NotNow(format!("no master key: {err}")))?;
    Ok(master)
}

/// The keys a backup is checked with: the master key and the data root the
/// manifest carries wrapped under it (none: a store never rotated). A root
/// that does not open under this master key was wrapped under another.
fn keys_of(master: MasterKey, manifest: &Manifest) -> Result<Keys, BackupError> {
    let wrapped = manifest
        .data_root_wrapped_hex
        .as_deref()
        .map(hex::decode)
        .transpose()
        .map_err(|_| BackupError::Refused("manifest: the wrapped data root is not hex".into()))?;
    let keys = KeyRing::open(master, wrapped.as_deref()).map_err(|_| {
        BackupError::Refused(
            "made under another master key (its data root does not open with this one): \
             restore it with the key in use when it was made"
                .into(),
        )
    })?;
    let (hasher, signer) =
        CheckpointSigner::of_keys(&keys).map_err(|err| BackupError::NotNow(err.to_string()))?;
    Ok(Keys {
        database: keys.derive(KeyPurpose::Database),
        hasher,
        signer,
    })
}

/// Reads and verifies the manifest (with the keys it names under
/// `master`), then writes the database of the backup
/// in `file` to `target` (0600), checking its size and checksum. Only two
/// plain files are accepted, in order: no links, no sparse or long-name
/// entries, nothing else.
fn extract(file: &Path, target: &Path, master: MasterKey) -> Result<(Manifest, Keys), BackupError> {
    let refused = |why: String| BackupError::Refused(why);
    let opened = File::open(file).map_err(file_error(file))?;
    let mut archive = tar::Archive::new(opened);
    let mut entries = archive.entries().map_err(file_error(file))?.raw(true);
    let mut next = |name: &str| -> Result<tar::Entry<'_, File>, BackupError> {
        let entry = entries
            .next()
            .ok_or_else(|| refused(format!("not an occcd backup: no {name}")))?
            .map_err(|err| refused(format!("not an occcd backup: {err}")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(refused(format!(
                "not an occcd backup: {name} is not a plain file"
            )));
        }
        let path = entry.path().map_err(|err| refused(err.to_string()))?;
        if path != Path::new(name) {
            return Err(refused(format!(
                "not an occcd backup: {} where {name} belongs",
                path.display()
            )));
        }
        Ok(entry)
    };
    let manifest_entry = next("manifest.json")?;
    if manifest_entry.size() > MAX_MANIFEST_BYTES {
        return Err(refused("the manifest is too large".into()));
    }
    let mut text = Vec::new();
    manifest_entry
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .map_err(file_error(file))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|err| refused(format!("manifest: {err}")))?;
    // Signed by this installation before anything of it is written.
    let keys = keys_of(master, &manifest)?;
    manifest
        .verify(&keys.signer)
        .map_err(BackupError::Refused)?;
    let mut database_entry = next("occcd.db")?;
    if database_entry.size() != manifest.database_bytes {
        return Err(refused(format!(
            "the database is {} bytes, the manifest says {}",
            database_entry.size(),
            manifest.database_bytes
        )));
    }
    let mut out = crate::crypto::private_file_options()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(file_error(target))?;
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = database_entry.read(&mut buffer).map_err(file_error(file))?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
        std::io::Write::write_all(&mut out, &buffer[..read]).map_err(file_error(target))?;
    }
    out.sync_all().map_err(file_error(target))?;
    if hex::encode(context.finish().as_ref()) != manifest.database_sha256 {
        return Err(refused(
            "the database's checksum does not match the manifest: the file is damaged".into(),
        ));
    }
    Ok((manifest, keys))
}

/// SQLite's and SQLCipher's integrity checks, the audit chain and its
/// checkpoints, and the manifest's head.
async fn check_copy(copy: &Store, keys: &Keys, manifest: &Manifest) -> Result<(), BackupError> {
    let problems = copy.integrity_problems().await?;
    if !problems.is_empty() {
        return Err(BackupError::Refused(format!(
            "integrity check: {}",
            problems.join("; ")
        )));
    }
    let refused = |err: crate::audit::AuditError| BackupError::Refused(format!("audit log: {err}"));
    let chain = verify_chain(copy, &keys.hasher).await.map_err(refused)?;
    if let Some(broken) = chain.first_broken {
        return Err(BackupError::Refused(format!(
            "the audit chain is broken at entry {}: {}",
            broken.sequence, broken.reason
        )));
    }
    if let Some(broken) = verify_checkpoints(copy, keys.signer.public_key())
        .await
        .map_err(refused)?
    {
        return Err(BackupError::Refused(format!(
            "audit checkpoint at entry {}: {}",
            broken.sequence, broken.reason
        )));
    }
    // The root the manifest carries is the one the copy holds (older
    // copies have neither).
    let stored_root = copy.wrapped_data_root().await.ok().flatten();
    if stored_root.map(hex::encode) != manifest.data_root_wrapped_hex {
        return Err(BackupError::Refused(
            "the manifest's wrapped data root is not the database's".into(),
        ));
    }
    let head = copy.last_audit_row().await?.map_or(0, |row| row.sequence);
    if head != manifest.audit_head {
        return Err(BackupError::Refused(format!(
            "the audit log ends at entry {head}, the manifest says {}",
            manifest.audit_head
        )));
    }
    Ok(())
}

/// How `copy`'s schema differs from the one occcd's migrations make.
async fn schema_difference(copy: &Store) -> Result<Option<String>, StoreError> {
    let (found, expected) = (
        copy.schema().await?,
        crate::store::migrated_schema(None).await?,
    );
    Ok(crate::store::schema_difference(&found, &expected))
}

/// How unmigrated `copy`'s schema differs from the one occcd's migrations
/// make up to the migration it records (its triggers must not run during
/// the migrations unless they are occcd's own).
async fn unmigrated_schema_difference(copy: &Store) -> Result<Option<String>, StoreError> {
    let version = copy.migration_version().await?;
    let expected = crate::store::migrated_schema(Some(version)).await?;
    Ok(crate::store::schema_difference(
        &copy.schema().await?,
        &expected,
    ))
}

/// Where the current store's audit log ends, if it opens (read-only: the
/// store kept aside stays as it was).
async fn current_head(database: &Path, key: &Subkey) -> Option<i64> {
    if !database.exists() {
        return None;
    }
    let store = Store::open_to_check(database, key).await.ok()?;
    let head = store
        .last_audit_row()
        .await
        .ok()
        .flatten()
        .map(|row| row.sequence);
    store.close().await;
    head
}

async fn append(
    copy: &Store,
    keys: &Keys,
    clock: Arc<dyn Clock>,
    entry: AuditEvent,
) -> Result<(), BackupError> {
    append_offline(copy, &keys.hasher, &keys.signer, clock, entry)
        .await
        .map_err(|err| BackupError::NotNow(format!("the restore could not be audited: {err}")))
}

/// Puts `extracted` in place of `database` with one rename, keeping the
/// old store (and any WAL of it) beside it.
fn swap(extracted: &Path, database: &Path, now_ms: i64) -> Result<Option<PathBuf>, BackupError> {
    let folder = state_folder_of(database);
    let kept_as = if database.exists() {
        let kept = with_suffix(database, &format!(".replaced-{now_ms}"));
        std::fs::hard_link(database, &kept).map_err(file_error(&kept))?;
        for suffix in ["-wal", "-shm"] {
            let side = with_suffix(database, suffix);
            if side.exists() {
                std::fs::rename(&side, with_suffix(&kept, suffix)).map_err(file_error(&side))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(extracted, database).map_err(file_error(database))?;
    crate::crypto::sync_folder(&folder).map_err(file_error(&folder))?;
    Ok(kept_as)
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
