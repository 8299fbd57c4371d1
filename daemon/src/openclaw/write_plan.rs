//! What a write stores and what it changes: the policy judgement (against
//! the file and the last accepted version) and the sealed rows — pure work
//! the editor runs off the async threads.
//!
//! Invariant: a write's rows are numbered on from the last accepted
//! version; the text found on disk comes first when it was changed outside
//! occcd (and is not the text being written); each row's summary is against
//! the row before it.

use std::sync::Arc;

use super::{
    diff,
    error::ConfigError,
    history::AcceptedText,
    policy::{self, PolicyChange},
    redact,
    versions::{self, NewVersion, Origin, VersionSummary, Versioner, shown_text},
    view::{EditPreview, Reader},
};
use crate::{
    audit::ConfigAction,
    auth::{role::Role, sessions::Session},
    clock::UnixMillis,
    crypto::Sealer,
    store::ConfigVersionRow,
};

/// A write that was accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The version now stored and on disk (unchanged: the one that was).
    pub stored: Option<VersionSummary>,
    /// The file's version now.
    pub version: String,
    /// Security-relevant changes it made to the file.
    pub changes: Vec<PolicyChange>,
}

/// One write's request, owned (it crosses into blocking work).
#[derive(Debug)]
pub struct WriteRequest {
    /// The version the writer read (empty: no file).
    pub expected: String,
    /// The text's bytes.
    pub text: Vec<u8>,
    /// Why.
    pub note: String,
    /// For a restore: the number brought back.
    pub restored_from: Option<i64>,
    /// The role the write needs (checked again when it has its turn).
    pub needs: Role,
}

/// What a write is planned from.
#[derive(Debug)]
pub struct PlanInput {
    /// Seals the rows.
    pub sealer: Arc<Sealer>,
    /// Names their versions.
    pub versioner: Arc<Versioner>,
    /// The watched container.
    pub container: String,
    /// Who writes.
    pub author: String,
    /// When (Unix ms).
    pub at: i64,
    /// The file on disk.
    pub disk: Option<Vec<u8>>,
    /// The last accepted version.
    pub accepted: Option<AcceptedText>,
}

/// What a write will store and what it changes.
#[derive(Debug)]
pub struct WritePlan {
    /// Security-relevant changes to the file on disk.
    pub changes: Vec<PolicyChange>,
    /// Settings loosened against the file or the last accepted version.
    pub loosened: Vec<String>,
    /// The rows to store.
    pub rows: Vec<ConfigVersionRow>,
}

/// The policy changes from the file on disk to `new`, and every setting
/// loosened against the disk *or* the last accepted version.
pub fn judge(
    disk: &[u8],
    accepted: Option<&AcceptedText>,
    new: &serde_json::Value,
) -> (Vec<PolicyChange>, Vec<String>) {
    let changes = policy::policy_diff(&versions::value_or_defaults(disk), new);
    // With no accepted version, OpenClaw's defaults are what was accepted.
    let against_accepted = policy::policy_diff(
        &versions::value_or_defaults(accepted.map_or(&b"{}"[..], |a| a.bytes.as_slice())),
        new,
    );
    let mut loosened: Vec<String> = changes
        .iter()
        .chain(&against_accepted)
        .filter(|c| c.loosens)
        .map(|c| c.path.clone())
        .collect();
    loosened.sort();
    loosened.dedup();
    (changes, loosened)
}

/// The writer as they are when the write has its turn (`session`: now, or
/// `None` once it ended): live, elevated, of the role needed, and no
/// container quarantined.
pub fn still_allowed(
    session: Option<Session>,
    now: UnixMillis,
    needs: Role,
    quarantined: bool,
) -> Result<Role, ConfigError> {
    if quarantined {
        return Err(ConfigError::Quarantined);
    }
    let session = session.ok_or_else(|| {
        ConfigError::NoLongerAllowed(
            "your session ended while the write waited; log in again".to_owned(),
        )
    })?;
    if session.elevation_at(now).is_none() {
        return Err(ConfigError::NoLongerAllowed(
            "your re-authentication lapsed while the write waited; elevate again".to_owned(),
        ));
    }
    if session.role < needs {
        return Err(ConfigError::NoLongerAllowed(format!(
            "your role changed to {:?} while the write waited",
            session.role
        )));
    }
    Ok(session.role)
}

/// Refuses `text` when it holds `[redacted]` placeholders the file on disk
/// does not: a redacted copy written back would replace secrets with them.
pub fn refuse_redacted_copy(text: &[u8], disk: Option<&[u8]>) -> Result<(), ConfigError> {
    let placeholder = redact::REDACTED.as_bytes();
    let holds = |bytes: &[u8]| bytes.windows(placeholder.len()).any(|w| w == placeholder);
    if holds(text) && !disk.is_some_and(holds) {
        return Err(ConfigError::input(
            "text",
            format!(
                "it holds {} placeholders from a redacted copy; edit the text an elevated admin sees",
                redact::REDACTED
            ),
        ));
    }
    Ok(())
}

/// What writing `text` (parsed: `parsed`) over `disk` would do, as
/// `reader` sees it.
#[must_use]
pub fn preview(
    versioner: &Versioner,
    disk: Option<&[u8]>,
    accepted: Option<&AcceptedText>,
    text: &str,
    parsed: &serde_json::Value,
    reader: Reader,
) -> EditPreview {
    let old = disk.unwrap_or_default();
    let (changes, loosened) = judge(old, accepted, parsed);
    EditPreview {
        needs_super_admin: !loosened.is_empty(),
        // The version of any text a caller sends would let a reader who
        // may not see secrets test guesses of them against the file's.
        version: if reader.may_see_secrets {
            versioner.of(text.as_bytes())
        } else {
            String::new()
        },
        current_version: versioner.of_disk(disk),
        diff: diff::unified(
            &reader.shown(&shown_text(old)),
            &reader.shown(text),
            "on disk",
            "edited",
        ),
        changes,
    }
}

/// The plan of writing `text` (a restore of `restored_from`, if set).
pub fn plan(
    input: &PlanInput,
    text: &[u8],
    note: &str,
    restored_from: Option<i64>,
) -> Result<WritePlan, ConfigError> {
    let new = versions::value_or_defaults(text);
    let old = input.disk.as_deref().unwrap_or_default();
    let (changes, loosened) = judge(old, input.accepted.as_ref(), &new);
    let mut number = input.accepted.as_ref().map_or(0, |a| a.row.number);
    let accepted_bytes = input.accepted.as_ref().map(|a| a.bytes.as_slice());
    let mut rows = Vec::new();
    let mut previous = accepted_bytes;
    // The text on disk is kept first when it was changed outside
    // occcd (unless the write stores that very text).
    if let Some(found) = input
        .disk
        .as_deref()
        .filter(|d| Some(*d) != accepted_bytes && *d != text)
    {
        number += 1;
        rows.push(versions::seal(
            &input.sealer,
            &input.versioner,
            &NewVersion {
                container: &input.container,
                number,
                text: found,
                previous,
                origin: Origin::Found,
                author: "outside occcd",
                at: input.at,
                note: "changed outside occcd; kept before it was replaced",
                restored_from: None,
            },
        )?);
        previous = Some(found);
    }
    rows.push(versions::seal(
        &input.sealer,
        &input.versioner,
        &NewVersion {
            container: &input.container,
            number: number + 1,
            text,
            previous,
            origin: if restored_from.is_some() {
                Origin::Restored
            } else {
                Origin::Edited
            },
            author: &input.author,
            at: input.at,
            note,
            restored_from,
        },
    )?);
    Ok(WritePlan {
        changes,
        loosened,
        rows,
    })
}

/// The audit action and detail of a stored `row` (`note`: the writer's).
#[must_use]
pub fn audit_detail(row: &ConfigVersionRow, note: &str) -> (ConfigAction, String) {
    let summary = versions::summary(row.clone());
    let action = match summary.origin.as_str() {
        "found" => ConfigAction::FoundOutside,
        "restored" => ConfigAction::Restored,
        _ => ConfigAction::Edited,
    };
    let policy: Vec<String> = summary
        .changes
        .iter()
        .map(|c| format!("{}{}", c.path, if c.loosens { " (loosens)" } else { "" }))
        .collect();
    let detail = format!(
        "+{} -{} lines; policy against the version before: {}; note: {}",
        summary.lines.added,
        summary.lines.removed,
        if policy.is_empty() {
            "unchanged".to_owned()
        } else {
            policy.join(", ")
        },
        if action == ConfigAction::FoundOutside {
            &summary.note
        } else {
            note
        }
    );
    (action, detail)
}
