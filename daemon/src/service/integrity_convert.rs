//! Integrity domain values to their `occc.v1` messages.
//!
//! Invariant: the only place that knows both the integrity types and their
//! proto types; evidence travels as the JSON the checks produced.

use occc_proto::v1 as pb;

use crate::{
    integrity::{
        baseline::{Baseline, PinnedFile},
        events,
        finding::{ContainerStatus, Finding, Health, Severity},
        snapshot::Manifest,
    },
    store::FindingRow,
};

fn severity_to_proto(severity: Severity) -> pb::Severity {
    match severity {
        Severity::Info => pb::Severity::Info,
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }
}

fn health_to_proto(health: Health) -> pb::ContainerHealth {
    match health {
        Health::Unknown => pb::ContainerHealth::Unknown,
        Health::Healthy => pb::ContainerHealth::Healthy,
        Health::Degraded => pb::ContainerHealth::Degraded,
        Health::Compromised => pb::ContainerHealth::Compromised,
    }
}

/// Proto finding of a live finding.
#[must_use]
pub fn finding_to_proto(finding: &Finding) -> pb::Finding {
    pb::Finding {
        check_id: finding.check_id.to_owned(),
        severity: severity_to_proto(finding.severity).into(),
        container: finding.container.clone(),
        summary: finding.summary.clone(),
        evidence_json: finding.evidence.to_string(),
        observed_at_unix_ms: finding.observed_at.0,
        needs_acknowledgement: events::event_check(finding.check_id).is_some(),
        first_observed_at_unix_ms: finding.first_seen.0,
        occurrences: finding.occurrences,
        acknowledgement: None,
    }
}

/// Proto finding of a stored finding.
#[must_use]
pub fn finding_row_to_proto(row: &FindingRow) -> pb::Finding {
    let severity =
        Severity::parse(&row.severity).map_or(pb::Severity::Unspecified, severity_to_proto);
    pb::Finding {
        check_id: row.check_id.clone(),
        severity: severity.into(),
        container: row.container.clone(),
        summary: row.summary.clone(),
        evidence_json: row.evidence.clone(),
        observed_at_unix_ms: row.observed_at,
        needs_acknowledgement: events::event_check(&row.check_id).is_some(),
        first_observed_at_unix_ms: row.observed_at,
        occurrences: 1,
        acknowledgement: row
            .acknowledged
            .as_ref()
            .map(|(by, at, note)| pb::Acknowledgement {
                by: by.clone(),
                at_unix_ms: *at,
                note: note.clone(),
            }),
    }
}

/// Proto status of a container.
#[must_use]
pub fn container_status_to_proto(status: &ContainerStatus) -> pb::ContainerStatus {
    pb::ContainerStatus {
        container: status.container.clone(),
        health: health_to_proto(status.health).into(),
        reason: status.reason.clone(),
        findings: status.findings.iter().map(finding_to_proto).collect(),
        quarantine: status.quarantine.as_ref().map(|q| pb::Quarantine {
            since_unix_ms: q.since.0,
            reason: q.reason.clone(),
            snapshot_id: q.snapshot_id.clone(),
            isolation: q.isolation.clone(),
        }),
        checked_at_unix_ms: status.checked_at.0,
        baseline_pinned: status.baseline_pinned,
    }
}

fn pinned_to_proto(file: &PinnedFile) -> pb::PinnedFile {
    pb::PinnedFile {
        path: file.path.clone(),
        sha256: file.sha256.clone(),
        size: file.size,
    }
}

/// Proto baseline.
#[must_use]
pub fn baseline_to_proto(baseline: &Baseline) -> pb::Baseline {
    pb::Baseline {
        container: baseline.container.clone(),
        image_id: baseline.image_id.clone(),
        repo_digests: baseline.repo_digests.clone(),
        settings_json: baseline.settings.to_string(),
        image_files: baseline.image_files.iter().map(pinned_to_proto).collect(),
        host_files: baseline.host_files.iter().map(pinned_to_proto).collect(),
        pinned_at_unix_ms: baseline.pinned_at.0,
        pinned_by: baseline.pinned_by.clone(),
    }
}

/// Proto snapshot description.
#[must_use]
pub fn manifest_to_proto(manifest: &Manifest) -> pb::SnapshotInfo {
    pb::SnapshotInfo {
        snapshot_id: manifest.snapshot_id.clone(),
        container: manifest.container.clone(),
        reason: manifest.reason.clone(),
        created_at_unix_ms: manifest.created_at,
        total_bytes: manifest.total_bytes(),
        artifacts: manifest
            .artifacts
            .iter()
            .map(|entry| pb::SnapshotArtifact {
                name: entry.name.clone(),
                size: entry.size,
                sha256: entry.sha256.clone(),
                source: entry.source.clone(),
                captured_at_unix_ms: entry.captured_at,
                partial: entry.partial,
            })
            .collect(),
        truncated: manifest.truncated.clone(),
        interrupted: manifest.interrupted,
    }
}
