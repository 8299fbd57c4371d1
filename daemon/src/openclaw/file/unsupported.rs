//! `openclaw.json` off Linux: the replacement relies on `openat2` and
//! `RENAME_EXCHANGE`, so the file is never opened — [`ConfigFile::open`]
//! refuses, saying why — and no method can run.

use std::path::Path;

use super::{ConfigFileError, Ownership};

/// `openclaw.json` off Linux: never opened ([`ConfigFile::open`] refuses,
/// saying why), so none of its methods can run.
#[derive(Debug)]
pub struct ConfigFile {
    never: std::convert::Infallible,
}

impl ConfigFile {
    /// Refused: the replacement relies on `openat2` and `RENAME_EXCHANGE`.
    pub fn open(path: &Path) -> Result<Self, ConfigFileError> {
        Err(ConfigFileError::Io {
            action: "open",
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "OpenClaw's config is edited on Linux only (openat2, RENAME_EXCHANGE)",
            ),
        })
    }

    /// Unreachable: no value exists.
    pub fn read(&self, _limit: usize) -> Result<Option<Vec<u8>>, ConfigFileError> {
        match self.never {}
    }

    /// Unreachable: no value exists.
    pub fn replace_if(
        &self,
        _text: &[u8],
        _fresh: Ownership,
        _expected: Option<&[u8]>,
    ) -> Result<bool, ConfigFileError> {
        match self.never {}
    }

    /// Unreachable: no value exists.
    pub fn fresh_ownership(&self) -> Result<Ownership, ConfigFileError> {
        match self.never {}
    }

    /// Unreachable: no value exists.
    pub fn remove(&self) -> Result<(), ConfigFileError> {
        match self.never {}
    }

    /// Unreachable: no value exists.
    pub fn remove_stale_temporaries(&self) -> Result<usize, ConfigFileError> {
        match self.never {}
    }
}

/// A point in the sequence of changes (off Linux: none is ever given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(std::convert::Infallible);

/// Changes to the config files: off Linux nothing is watched, so no mark
/// is given and every read goes to the disk.
#[derive(Debug, Default)]
pub struct FileChanges;

impl FileChanges {
    /// Nothing watched.
    #[must_use]
    pub fn new() -> Self {
        Self
    }

    /// Never known.
    pub fn mark(&self) -> Option<Mark> {
        None
    }

    /// Never watched.
    pub fn watch(&self, _path: &Path) -> Option<Mark> {
        None
    }
}
