//! Whether the config file on disk is still the version occcd last
//! accepted — what the integrity monitor's config check asks each sweep.
//!
//! Invariant: the file and the last accepted version are read under the
//! container's write lock, so a write through occcd (file replaced,
//! version stored) is seen whole or not at all; the diff and policy values in a drift are redacted (findings are
//! shown to every role); a file that cannot be read safely (a link, a
//! FIFO, too large) is a drift too, never a silent pass.

use super::{
    config::ConfigTarget,
    diff, document,
    editor::ConfigEditor,
    error::ConfigError,
    policy::{self, PolicyChange},
    redact,
    targets::{blocking, read_disk},
    versions::{self, shown_text},
};

/// How long the check waits for a write to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the file on disk differs from the last accepted version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The text changed.
    Changed {
        /// False when occcd cannot parse the text found (OpenClaw may read
        /// it otherwise: occcd cannot say what it allows).
        parses: bool,
        /// Number of the last accepted version (0: none was stored).
        accepted_number: i64,
        /// Version of the text found.
        found_version: String,
        /// Unified diff, accepted → found, redacted.
        diff: String,
        /// Security-relevant changes, accepted → found.
        changes: Vec<PolicyChange>,
    },
    /// The file is gone.
    Removed {
        /// Number of the last accepted version.
        accepted_number: i64,
    },
    /// Something occcd does not read is where the file should be.
    Unsafe(String),
}

impl Drift {
    /// True when the change weakens a security setting, or cannot be
    /// judged because occcd cannot parse the text found.
    #[must_use]
    pub fn loosens(&self) -> bool {
        match self {
            Self::Changed {
                changes, parses, ..
            } => !parses || policy::loosens(changes),
            Self::Removed { .. } | Self::Unsafe(_) => false,
        }
    }
}

/// How `target`'s file drifted from what `editor` last accepted, if it did.
pub async fn drift_of(
    editor: &ConfigEditor,
    target: &ConfigTarget,
) -> Result<Option<Drift>, ConfigError> {
    let lock = editor.targets().lock_of(target);
    // A write holding the lock for long must not stall the sweep forever.
    let Ok(_no_write_running) = tokio::time::timeout(LOCK_WAIT, lock.lock()).await else {
        return Err(ConfigError::Internal(format!(
            "a config write held the file for over {LOCK_WAIT:?}"
        )));
    };
    let disk = match read_disk(target).await {
        Ok(disk) => disk,
        Err(ConfigError::Unsafe(err)) => return Ok(Some(Drift::Unsafe(err.to_string()))),
        Err(err) => return Err(err),
    };
    let accepted = editor.history().accepted(target).await?;
    let Some(bytes) = disk else {
        return Ok(accepted.map(|a| Drift::Removed {
            accepted_number: a.row.number,
        }));
    };
    let found_version = editor.versioner().of(&bytes);
    if accepted
        .as_ref()
        .is_some_and(|a| a.row.version == found_version)
    {
        return Ok(None);
    }
    // What was read is compared without holding up writers, off the async
    // threads (parsing, redacting and diffing up to 1 MiB twice).
    drop(_no_write_running);
    let (number, old) = accepted.map_or((0, Vec::new()), |a| (a.row.number, a.bytes));
    blocking(move || Ok(Some(changed(number, found_version, &old, &bytes)))).await
}

fn changed(number: i64, found_version: String, old: &[u8], bytes: &[u8]) -> Drift {
    let (found, old_text) = (shown_text(bytes), shown_text(old));
    Drift::Changed {
        accepted_number: number,
        parses: std::str::from_utf8(bytes).is_ok_and(|text| document::parse(text).is_ok()),
        found_version,
        diff: diff::unified(
            &redact::redact_text(&old_text),
            &redact::redact_text(&found),
            &format!("version {number} (accepted)"),
            "on disk",
        ),
        changes: policy::policy_diff(
            &versions::value_or_defaults(old),
            &versions::value_or_defaults(bytes),
        ),
    }
}
