//! The encrypted store: one SQLCipher database opened through sqlx.
//!
//! Invariant: the file is never read or written before the key pragma, so the
//! database, its `-wal` and `-shm` hold only ciphertext; a wrong key fails on
//! open without modifying the file; an acknowledged commit is on disk (WAL,
//! `synchronous = FULL`). Only this module knows the schema.

mod audit_rows;
mod auth_failure_rows;
mod backup_sql;
mod checkpoint_rows;
mod closing;
mod config_rows;
mod db_config;
mod device_key_rows;
mod finding_rows;
mod integrity_rows;
mod key_rows;
#[cfg(target_os = "linux")]
pub mod libcrypto;
mod os_account_rows;
mod output_cursor_rows;
mod page_cache;
mod query_plans;
mod schema;
mod session_rows;
mod skill_rows;
mod snapshot_rows;
pub mod sqlite_heap;
mod user_page_rows;
mod user_rows;
mod write_refusal;

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{
    ConnectOptions, Connection, Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use zeroize::Zeroizing;

use crate::crypto::Subkey;
use write_refusal::WriteRefusal;

pub use audit_rows::{AuditRow, AuditRowFilter, AuditRowPage};
pub use auth_failure_rows::AuthFailureRow;
pub use checkpoint_rows::CheckpointRow;
pub use config_rows::ConfigVersionRow;
pub use device_key_rows::DeviceKeyRow;
pub use finding_rows::{Acknowledged, FindingRow, OpenFindingRow};
pub use integrity_rows::{BaselineRow, QuarantineRow};
pub use key_rows::{SEALED_COLUMNS, SealedColumn};
pub use schema::{SchemaObject, difference as schema_difference, migrated_schema};
pub use session_rows::{ClockAnchorRow, SessionRow};
pub use skill_rows::{SkillApprovalRow, SkillDecisionRow, SkillRow};
pub use snapshot_rows::SnapshotRow;
pub use user_page_rows::UserListingRow;
pub use user_rows::{UserChange, UserRow};

/// SQLite's primary result codes for "database or disk is full" and
/// "attempt to write a readonly database" (extended codes keep them in the
/// low byte).
const SQLITE_FULL: i64 = 13;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let primary = match &err {
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .map(|code| code & 0xff),
            _ => None,
        };
        match primary {
            Some(SQLITE_FULL) => Self::Full,
            Some(SQLITE_READONLY) => Self::WritesRefused,
            Some(SQLITE_IOERR) => Self::Io(err.to_string()),
            _ => Self::Database(err),
        }
    }
}

/// SQLite's "file is not a database" result code, what SQLCipher reports for a wrong key.
const SQLITE_NOTADB: &str = "26";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not decrypt the database.
    #[error(
        "the master key does not decrypt database {path} (wrong key, or not an occcd database)"
    )]
    WrongKey {
        /// The database file.
        path: String,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A sealed value did not open during a key rotation.
    #[error("a sealed value does not open: {0}")]
    Unsealable(String),
    /// The store's file system is full: nothing was written.
    #[error(
        "occcd's store is out of disk space: nothing was changed; free space on the file \
         system of its state folder"
    )]
    Full,
    /// The store takes no changes now (the master key's file is gone or
    /// holds another key, or the file system is read-only): nothing was
    /// written; reads go on.
    #[error(
        "occcd's store is taking no changes right now: nothing was changed, reads go on; \
         its master key file is gone or holds another key, or its file system is read-only \
         (the daemon's log and the audit log say which)"
    )]
    WritesRefused,
    /// The disk or file system failed a read or a write (e.g. the kernel
    /// turned it read-only after an error). The statement that failed was
    /// not stored; in a flow of several steps, earlier ones may have been.
    #[error(
        "occcd's store could not be read or written: its disk or file system failed (for \
         instance, it was turned read-only after an error): this step was not stored; the \
         audit log and the daemon's log say what was ({0})"
    )]
    Io(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

/// Handle to the open encrypted database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Whether changes are refused (see [`Store::refuse_writes`]).
    write_refusal: Arc<WriteRefusal>,
    /// Opened read-only to be checked: its one connection never checkpoints.
    read_only: bool,
    /// Raised after every write to accounts, their recovery codes or OS
    /// links (see [`Store::accounts_version`]).
    accounts_version: Arc<AtomicU64>,
    /// Raised after every write to the snapshots table.
    snapshots_version: Arc<AtomicU64>,
    /// Raised after every write to the findings history.
    findings_version: Arc<AtomicU64>,
    /// Raised after every append to the audit log.
    audit_version: Arc<AtomicU64>,
    /// The newest audit sequence, read under `audit_version`.
    newest_audit: Arc<ReadCopy<Option<i64>>>,
    /// Raised after every write to skill versions or their approvals.
    skills_version: Arc<AtomicU64>,
    /// Raised after every write to stored OpenClaw config versions.
    configs_version: Arc<AtomicU64>,
}

/// Raises a version when dropped — at the end of a write, whichever way it
/// ended.
struct VersionRaise<'a>(&'a AtomicU64);

impl Drop for VersionRaise<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A copy of something read from the store under a version (see
/// [`Store::accounts_version`]): given back only while that version holds.
#[derive(Debug)]
pub struct ReadCopy<T> {
    held: std::sync::Mutex<Option<(u64, T)>>,
}

impl<T> Default for ReadCopy<T> {
    fn default() -> Self {
        Self {
            held: std::sync::Mutex::new(None),
        }
    }
}

impl<T: Clone> ReadCopy<T> {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<(u64, T)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The copy, if it was read under `version`.
    pub fn get(&self, version: u64) -> Option<T> {
        self.held()
            .as_ref()
            .filter(|(read_under, _)| *read_under == version)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value`, read under `version` (read the version before reading).
    pub fn put(&self, version: u64, value: T) {
        *self.held() = Some((version, value));
    }
}

/// occcd's migrations (embedded once: [`Store::open`] runs them, and a
/// restore compares a copy with the schema they make).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (or, with `create`, creates) the database at `path` with
    /// `database_key`, then applies pending migrations.
    pub async fn open(
        path: &Path,
        database_key: &Subkey,
        create: bool,
    ) -> Result<Self, StoreError> {
        let options = keyed_options(path, database_key)?
            .create_if_missing(create)
            // A small database: a 512 KiB page cache per connection keeps RSS low.
            .pragma("cache_size", "-512")
            // The largest page any list returns (1,000 users or findings)
            // fits in the rows the worker thread hands over: with sqlx's 50
            // it waited for the reader at every row past the 50th, two
            // thread switches per row. Every query collects its whole result
            // anyway (no row streams), so this bounds nothing new.
            .row_buffer_size(1024)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if !create {
            check_key_read_only(path, database_key).await?;
        }
        let write_refusal = Arc::new(WriteRefusal::default());
        let (on_acquire, on_connect) = (Arc::clone(&write_refusal), Arc::clone(&write_refusal));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            // sqlx-sqlite's ping before each hand-out only checked that the
            // connection's worker thread answers, never the database — one
            // more round trip to that thread per query. A dead worker is
            // still caught by the ping when a connection is given back and
            // by the next command; `before_acquire` still runs.
            .test_before_acquire(false)
            // Idle connections pass `before_acquire`, new ones only
            // `after_connect`: both set the pragma.
            .before_acquire(move |connection, _| {
                Box::pin(WriteRefusal::apply(Arc::clone(&on_acquire), connection))
            })
            .after_connect(move |connection, _| {
                let refusal = Arc::clone(&on_connect);
                Box::pin(async move {
                    query_plans::keep_plans(connection).await;
                    WriteRefusal::apply(refusal, connection).await.map(drop)
                })
            })
            .connect_with(options)
            .await
            .map_err(|err| classify(err, path))?;
        MIGRATOR.run(&pool).await?;
        page_cache::warn_if_shared(&pool).await;
        Ok(Self::with_pool(pool, write_refusal, false))
    }

    /// A store on `pool`, its versions at zero.
    fn with_pool(pool: SqlitePool, write_refusal: Arc<WriteRefusal>, read_only: bool) -> Self {
        Self {
            pool,
            write_refusal,
            read_only,
            accounts_version: Arc::new(AtomicU64::new(0)),
            snapshots_version: Arc::new(AtomicU64::new(0)),
            findings_version: Arc::new(AtomicU64::new(0)),
            audit_version: Arc::new(AtomicU64::new(0)),
            newest_audit: Arc::default(),
            skills_version: Arc::new(AtomicU64::new(0)),
            configs_version: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the database answers a trivial query within `within` (the
    /// service watchdog asks).
    pub async fn ping(&self, within: Duration) -> Result<(), String> {
        match tokio::time::timeout(within, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} s", within.as_secs())),
        }
    }

    /// A number that changes after every write to what a profile shows —
    /// accounts (not the TOTP replay step or a password rehash), recovery
    /// codes, OS-account links: a copy of such data read after seeing version
    /// `v` is current as long as the version is still `v` (the number is
    /// raised once the write has ended, so a read that saw the old number
    /// is never taken for a current one).
    #[must_use]
    pub fn accounts_version(&self) -> u64 {
        self.accounts_version.load(Ordering::SeqCst)
    }

    /// Marks the start of a write to account data; see [`Self::accounts_version`].
    fn accounts_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.accounts_version)
    }

    /// Like [`Self::accounts_version`], for the list of snapshots.
    #[must_use]
    pub fn snapshots_version(&self) -> u64 {
        self.snapshots_version.load(Ordering::SeqCst)
    }

    /// Marks the start of a write to the snapshots table.
    fn snapshots_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.snapshots_version)
    }

    /// Like [`Self::accounts_version`], for the findings history.
    #[must_use]
    pub fn findings_version(&self) -> u64 {
        self.findings_version.load(Ordering::SeqCst)
    }

    /// Marks the start of a write to the findings history.
    fn findings_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.findings_version)
    }

    /// Like [`Self::accounts_version`], for the audit log.
    #[must_use]
    pub fn audit_version(&self) -> u64 {
        self.audit_version.load(Ordering::SeqCst)
    }

    /// Marks the start of an append to the audit log.
    fn audit_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.audit_version)
    }

    /// Like [`Self::accounts_version`], for skill versions and approvals.
    #[must_use]
    pub fn skills_version(&self) -> u64 {
        self.skills_version.load(Ordering::SeqCst)
    }

    /// Marks the start of a write to skill versions or approvals.
    fn skills_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.skills_version)
    }

    /// Like [`Self::accounts_version`], for stored OpenClaw config versions.
    #[must_use]
    pub fn configs_version(&self) -> u64 {
        self.configs_version.load(Ordering::SeqCst)
    }

    /// Marks the start of a write to stored config versions.
    fn configs_change(&self) -> VersionRaise<'_> {
        VersionRaise(&self.configs_version)
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock at the
    /// start, waiting up to the busy timeout while another connection
    /// writes. A deferred `BEGIN` whose first statement reads cannot wait
    /// when it comes to write: SQLite refuses that upgrade at once
    /// (SQLITE_BUSY) if another connection wrote meanwhile — skill
    /// approvals failed that way while accounts were being created
    /// (`kill_9_during_mixed_writes_…`).
    async fn write_transaction(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        if self.write_refusal.reason().is_some() {
            return Err(StoreError::WritesRefused);
        }
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Refuses changes from now on, for `reason` (logged; writes answer
    /// [`StoreError::WritesRefused`]); reads go on. A write already running
    /// finishes.
    pub fn refuse_writes(&self, reason: String) {
        self.write_refusal.refuse(reason);
    }

    /// Takes changes again.
    pub fn allow_writes(&self) {
        self.write_refusal.allow();
    }

    /// Why changes are refused, while they are.
    #[must_use]
    pub fn writes_refused(&self) -> Option<String> {
        self.write_refusal.reason()
    }

    /// Waits for open connections to finish, checkpoints the WAL and closes
    /// (`closing` says how the WAL is made to go; a store opened read-only
    /// to be checked writes nothing, not even a checkpoint).
    pub async fn close(&self) {
        if self.read_only {
            self.pool.close().await;
        } else {
            closing::close_leaving_no_wal(&self.pool).await;
        }
    }

    /// The connection pool, for tools and tests that inspect the database
    /// directly. Daemon code goes through the typed functions of this module.
    #[doc(hidden)]
    #[must_use]
    pub fn raw_pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Options for the database at `path` under `key`, which every connection
/// the store opens starts from: `PRAGMA key` first (raw-key form: SQLCipher
/// skips PBKDF2, since the key is already uniform random), then SQLCipher's
/// memory security off when SQLite's frees are wiped by `sqlite_heap` (same
/// wiping, without a lock/unlock system call per block) and on otherwise;
/// statements never logged (sqlx logs them at debug, slow ones at warn, and
/// the first is `PRAGMA key`).
/// A new store in `folder` under a fixed key, for the rows' unit tests
/// (the folder must outlive it).
#[cfg(test)]
pub(crate) async fn open_for_test(folder: &Path) -> Store {
    let keys = crate::crypto::KeyRing::from_bytes(Zeroizing::new([7; 32]));
    match Store::open(
        &folder.join("db"),
        &keys.derive(crate::crypto::KeyPurpose::Database),
        true,
    )
    .await
    {
        Ok(store) => store,
        Err(err) => panic!("a test store in {}: {err}", folder.display()),
    }
}

fn keyed_options(path: &Path, key: &Subkey) -> Result<SqliteConnectOptions, StoreError> {
    // Any process opening a store, not only occcd's `main` (a libcrypto
    // that cannot initialize fails the open below with SQLCipher's error).
    #[cfg(target_os = "linux")]
    let _ = libcrypto::keep_until_exit();
    let key_pragma = Zeroizing::new(format!("\"x'{}'\"", hex::encode(key.expose())));
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .pragma("key", key_pragma.to_string())
        .pragma(
            "cipher_memory_security",
            sqlite_heap::cipher_memory_security(),
        )
        // The schema's triggers and CHECKs may call only functions without
        // side effects (a restored copy's schema is checked, not trusted).
        .pragma("trusted_schema", "OFF")
        .disable_statement_logging())
}

/// Proves the key on a read-only connection before any writable one opens: a
/// writable connection with a wrong key would still checkpoint a leftover WAL
/// into the database file when it closes; a read-only one never writes it.
async fn check_key_read_only(path: &Path, key: &Subkey) -> Result<(), StoreError> {
    let options = keyed_options(path, key)?.read_only(true);
    let mut connection = options.connect().await.map_err(|err| classify(err, path))?;
    let probe = sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut connection)
        .await;
    let _ = connection.close().await;
    probe.map(drop).map_err(|err| classify(err, path))
}

fn classify(err: sqlx::Error, path: &Path) -> StoreError {
    if is_not_a_database(&err) {
        StoreError::WrongKey {
            path: path.display().to_string(),
        }
    } else {
        err.into()
    }
}

fn is_not_a_database(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().as_deref() == Some(SQLITE_NOTADB),
        _ => false,
    }
}
