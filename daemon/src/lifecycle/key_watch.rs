//! Watches the master key's file while the daemon runs. If it disappears,
//! cannot be read, or holds another key, the next start could not open the
//! store — so the store stops taking changes (reads and sessions go on,
//! writes answer UNAVAILABLE saying why) and the audit log says so; once the
//! file holds the key that opens the store again, changes resume.
//!
//! Invariant: the refusal is audited before it takes effect and the
//! resumption after it (while refused, the audit log takes nothing either:
//! a changed reason is logged); only the same database key (compared in constant
//! time against a digest kept since start, never the key itself) lifts a
//! refusal.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use ring::digest;
use subtle::ConstantTimeEq;

use crate::{
    audit::{Actor, AuditEvent, AuditLog},
    crypto::{KeySource, Subkey, read_key_file},
    store::Store,
};

/// How often the key file's metadata is looked at (its bytes are read only
/// when the metadata changed).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What the key file holds, as last looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyFile {
    /// The key that opens the store.
    Same,
    /// Something is wrong; the reason names what, never key material.
    Wrong(String),
}

/// The watch: the file, and a digest of the database key it must hold.
#[derive(Debug)]
pub struct KeyWatch {
    path: PathBuf,
    expected: [u8; 32],
}

/// The file's identity, size, and modification and change times: a change
/// means the bytes are read again.
type Stamp = Option<(u64, u64, SystemTime, i64)>;

fn digest_of(database_key: &Subkey) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"occcd key-file watch\0");
    context.update(database_key.expose());
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// What the file at `path` holds, against the digest `expected`.
fn look(path: &std::path::Path, expected: &[u8; 32]) -> KeyFile {
    let shown = path.display();
    match read_key_file(path) {
        Ok(key) => {
            let found = digest_of(&key.database_key());
            if bool::from(found.ct_eq(expected)) {
                KeyFile::Same
            } else {
                KeyFile::Wrong(format!(
                    "the master key file {shown} now holds another key, which does not open this store"
                ))
            }
        }
        Err(_) if !path.exists() => KeyFile::Wrong(format!("the master key file {shown} is gone")),
        Err(err) => KeyFile::Wrong(format!("the master key file {shown} cannot be used: {err}")),
    }
}

impl KeyWatch {
    /// A watch of the key file `source` names, for the store `database_key`
    /// opens; none for a systemd credential (a copy systemd makes for each
    /// run from the encrypted credential, which is what must be kept).
    #[must_use]
    pub fn new(source: &KeySource, database_key: &Subkey) -> Option<Self> {
        match source {
            KeySource::SystemdCredential(_) => None,
            KeySource::KeyFile(path) | KeySource::Generated(path) => Some(Self {
                path: path.clone(),
                expected: digest_of(database_key),
            }),
        }
    }

    fn stamp(&self) -> Stamp {
        let meta = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        let (identity, changed) = {
            use std::os::unix::fs::MetadataExt as _;
            (
                meta.ino(),
                meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            )
        };
        #[cfg(not(unix))]
        let (identity, changed) = (0, 0);
        Some((identity, meta.len(), meta.modified().ok()?, changed))
    }

    /// Looks at the file every second until aborted, refusing or resuming
    /// the store's changes as it finds it.
    pub async fn run(self, store: Store, audit: AuditLog) {
        let mut ticks = tokio::time::interval(LOOK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first look is in full: a change between opening the store and
        // now is no baseline.
        let mut last_stamp = None;
        let mut state = KeyFile::Same;
        loop {
            ticks.tick().await;
            let stamp = self.stamp();
            if stamp.is_some() && stamp == last_stamp && state == KeyFile::Same {
                continue;
            }
            last_stamp = stamp;
            // Off the runtime: file I/O, and a FIFO swapped in between the
            // type check and the read would block only this watch.
            let path = self.path.clone();
            let expected = self.expected;
            let found = match tokio::task::spawn_blocking(move || look(&path, &expected)).await {
                Ok(found) => found,
                Err(err) => KeyFile::Wrong(format!("the key file check failed: {err}")),
            };
            if found == state {
                continue;
            }
            match &found {
                // Already refused: the audit log takes nothing now; the log says what changed.
                KeyFile::Wrong(reason) if state != KeyFile::Same => {
                    tracing::error!(%reason, "still refusing changes to the store");
                }
                KeyFile::Wrong(reason) => {
                    tracing::error!(%reason, "refusing changes to the store until the key file is back");
                    let event = AuditEvent::StoreWritesRefused {
                        reason: reason.clone(),
                    };
                    audit.record_or_log(Actor::daemon(), event).await;
                    store.refuse_writes(reason.clone());
                }
                KeyFile::Same => {
                    store.allow_writes();
                    tracing::warn!(key_file = %self.path.display(), "the master key file is back: the store takes changes again");
                    let event = AuditEvent::StoreWritesResumed {
                        key_file: self.path.display().to_string(),
                    };
                    audit.record_or_log(Actor::daemon(), event).await;
                }
            }
            state = found;
        }
    }
}
