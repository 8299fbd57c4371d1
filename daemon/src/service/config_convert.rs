//! Config domain values to `occc.v1` messages.

use occc_proto::v1 as pb;

use crate::openclaw::{
    document::ConfigParseError,
    policy::PolicyChange,
    versions::VersionSummary,
    view::{ConfigView, EditPreview},
};

pub(super) fn change_to_proto(change: &PolicyChange) -> pb::PolicyChange {
    pb::PolicyChange {
        path: change.path.clone(),
        before: change.before.clone().unwrap_or_default(),
        after: change.after.clone().unwrap_or_default(),
        risk: change.risk.clone().unwrap_or_default(),
        loosens: change.loosens,
    }
}

pub(super) fn version_to_proto(version: &VersionSummary) -> pb::ConfigVersion {
    pb::ConfigVersion {
        container: version.container.clone(),
        number: version.number,
        version: version.version.clone(),
        size: version.size,
        origin: version.origin.clone(),
        author: version.author.clone(),
        created_at_ms: version.created_at,
        note: version.note.clone(),
        lines_added: version.lines.added,
        lines_removed: version.lines.removed,
        changes: version.changes.iter().map(change_to_proto).collect(),
        restored_from: version.restored_from.unwrap_or(0),
    }
}

fn parse_problem(err: &ConfigParseError) -> pb::ConfigProblem {
    let (line, column) = match err {
        ConfigParseError::Syntax { line, column, .. } => (*line, *column),
        _ => (0, 0),
    };
    pb::ConfigProblem {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        path: String::new(),
        message: err.to_string(),
    }
}

pub(super) fn view_to_proto(mut view: ConfigView) -> pb::ConfigFile {
    let mut problems: Vec<pb::ConfigProblem> = view.parse_error.iter().map(parse_problem).collect();
    problems.extend(view.schema_errors.iter().map(|e| pb::ConfigProblem {
        line: 0,
        column: 0,
        path: e.path.clone(),
        message: e.message.clone(),
    }));
    pb::ConfigFile {
        container: std::mem::take(&mut view.container),
        path: std::mem::take(&mut view.path),
        exists: view.exists,
        text: std::mem::take(&mut view.text),
        redacted: view.redacted,
        version: std::mem::take(&mut view.version),
        problems,
        latest_number: view.latest_number,
        accepted: view.accepted,
    }
}

pub(super) fn preview_to_proto(preview: EditPreview) -> pb::ConfigPreview {
    pb::ConfigPreview {
        changes: preview.changes.iter().map(change_to_proto).collect(),
        version: preview.version,
        current_version: preview.current_version,
        needs_super_admin: preview.needs_super_admin,
        diff: preview.diff,
    }
}
