//! The bootstrap gate: whether the first super-admin may still be created,
//! and with which token.
//!
//! Invariant: open only between `open` and its expiry, for the one token
//! whose hash it holds (compared in constant time), and closed for good by
//! the first valid use, which also removes the token file. Time is a
//! parameter: the gate reads no clock.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use subtle::ConstantTimeEq;

use crate::clock::UnixMillis;

/// The open bootstrap, if any: the token's hash and its expiry.
#[derive(Debug)]
pub struct BootstrapGate {
    path: PathBuf,
    open: Mutex<Option<([u8; 32], UnixMillis)>>,
}

impl BootstrapGate {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            open: Mutex::new(None),
        }
    }

    /// Where the token is written.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the bootstrap for the token hashing to `token_hash`, until `expires`.
    pub(super) fn open(&self, token_hash: [u8; 32], expires: UnixMillis) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = Some((token_hash, expires));
    }

    /// Whether `token_hash` opens the bootstrap at `now`; if so it is closed
    /// (once only) and the token file removed.
    pub(super) fn take_if_valid(&self, token_hash: &[u8; 32], now: UnixMillis) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let valid = open.as_ref().is_some_and(|(expected, expires)| {
            bool::from(expected.ct_eq(token_hash)) && now < *expires
        });
        if valid {
            *open = None;
            if let Err(err) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %err, "could not remove used bootstrap token file");
            }
        }
        valid
    }

    /// Whether `token_hash` opens the bootstrap at `now` (it stays open).
    pub(super) fn matches(&self, token_hash: &[u8; 32], now: UnixMillis) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.as_ref().is_some_and(|(expected, expires)| {
            bool::from(expected.ct_eq(token_hash)) && now < *expires
        })
    }
}
