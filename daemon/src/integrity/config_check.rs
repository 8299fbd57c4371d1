//! Holding each container's `openclaw.json` to the version occcd last
//! accepted: a change made outside occcd is a finding, with the diff.
//!
//! Invariant: a text that differs from the last accepted version is
//! `config.changed_outside` — high, critical when the change weakens a
//! security setting or occcd cannot parse it (so cannot judge it); a file removed is `config.removed_outside` (high);
//! something else where the file should be (a symlink, a FIFO, too large)
//! is `config.not_regular` (high); a check that cannot complete is
//! `check.failed` — never a silent pass. The comparison holds the editor's
//! lock, so occcd's own writes are never seen half-done. Evidence is
//! redacted: findings are shown to every role.

use std::sync::Arc;

use serde_json::json;

use super::finding::{Finding, Severity};
use crate::{
    clock::UnixMillis,
    openclaw::{
        ConfigEditor,
        drift::{Drift, drift_of},
    },
};

/// What the config check needs.
#[derive(Debug, Clone)]
pub struct ConfigWatch {
    /// The editor whose accepted versions are the baseline.
    pub editor: Arc<ConfigEditor>,
}

impl ConfigWatch {
    /// Checks `container`'s config file, if it has one.
    pub async fn check(&self, container: &str, now: UnixMillis) -> Vec<Finding> {
        let Some(target) = self
            .editor
            .targets()
            .all()
            .iter()
            .find(|target| target.container == container)
        else {
            return Vec::new();
        };
        let path = target.path.display().to_string();
        let drift = match drift_of(&self.editor, target).await {
            Ok(None) => return Vec::new(),
            Ok(Some(drift)) => drift,
            Err(err) => {
                return vec![Finding::new(
                    container,
                    "check.failed",
                    Severity::High,
                    format!("config check could not compare {path}: {err}"),
                    json!({ "check": "openclaw_config", "path": path, "error": err.to_string() }),
                    now,
                )];
            }
        };
        let loosens = drift.loosens();
        let finding = match drift {
            Drift::Changed {
                accepted_number,
                found_version,
                diff,
                changes,
                parses,
            } => Finding::new(
                container,
                "config.changed_outside",
                if loosens {
                    Severity::Critical
                } else {
                    Severity::High
                },
                format!(
                    "{path} changed outside occcd (now {}…; last accepted: version {accepted_number}){}",
                    found_version.get(..12).unwrap_or(&found_version),
                    if loosens {
                        "; it weakens security settings"
                    } else {
                        ""
                    }
                ),
                json!({
                    "path": path,
                    "found_version": found_version,
                    "accepted_number": accepted_number,
                    "diff": diff,
                    "policy_changes": changes,
                    "parses": parses,
                }),
                now,
            ),
            Drift::Removed { accepted_number } => Finding::new(
                container,
                "config.removed_outside",
                Severity::High,
                format!(
                    "{path} was removed outside occcd (last accepted: version {accepted_number})"
                ),
                json!({ "path": path, "accepted_number": accepted_number }),
                now,
            ),
            Drift::Unsafe(why) => Finding::new(
                container,
                "config.not_regular",
                Severity::High,
                format!("the OpenClaw config is not a file occcd reads: {why}"),
                json!({ "path": path, "error": why }),
                now,
            ),
        };
        vec![finding]
    }
}
