//! Findings, severities and the health they add up to.
//!
//! Invariant: health is derived from findings and sight alone — a container
//! the monitor cannot see is `Unknown`, never `Healthy`; any critical
//! finding or a quarantine makes it `Compromised`.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action.
    Info,
    /// Hardening gap.
    Low,
    /// Weakens isolation.
    Medium,
    /// Breaks isolation or shows tampering.
    High,
    /// Active compromise or trivial escape.
    Critical,
}

impl Severity {
    /// Every severity, least first.
    pub const ALL: [Self; 5] = [
        Self::Info,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    /// Stable name, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Info,
            Self::Low,
            Self::Medium,
            Self::High,
            Self::Critical,
        ]
        .into_iter()
        .find(|severity| severity.as_str() == name)
    }
}

/// Longest summary kept; a longer one is cut.
pub const MAX_SUMMARY_CHARS: usize = 1_000;

/// One thing a check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which check, e.g. `runtime.privileged`.
    pub check_id: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The configured container name.
    pub container: String,
    /// One line a person can act on.
    pub summary: String,
    /// What was seen.
    pub evidence: serde_json::Value,
    /// When (the latest occurrence).
    pub observed_at: UnixMillis,
    /// When first seen (an open event finding counts its repeats).
    pub first_seen: UnixMillis,
    /// How often it was seen while open.
    pub occurrences: u32,
}

impl Finding {
    /// `self` as a repeat of `earlier` (same container and check): the
    /// latest words and evidence, the earlier start, the worse severity,
    /// one more occurrence.
    #[must_use]
    pub fn repeating(mut self, earlier: &Finding) -> Self {
        self.first_seen = earlier.first_seen;
        self.occurrences = earlier.occurrences.saturating_add(1);
        self.severity = self.severity.max(earlier.severity);
        self
    }

    /// A finding about `container`, observed at `now`.
    #[must_use]
    pub fn new(
        container: &str,
        check_id: &'static str,
        severity: Severity,
        summary: impl Into<String>,
        evidence: serde_json::Value,
        now: UnixMillis,
    ) -> Self {
        Self {
            check_id,
            severity,
            container: container.to_owned(),
            // Summaries quote names the container chose (file names): they
            // reach terminals and logs, so no control character passes.
            // Bounded: a container chooses much of what they quote.
            summary: summary
                .into()
                .chars()
                .take(MAX_SUMMARY_CHARS)
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect(),
            evidence,
            observed_at: now,
            first_seen: now,
            occurrences: 1,
        }
    }
}

impl Finding {
    /// Its row in the findings history (not acknowledged).
    #[must_use]
    pub fn history_row(&self) -> crate::store::FindingRow {
        crate::store::FindingRow {
            container: self.container.clone(),
            check_id: self.check_id.to_owned(),
            severity: self.severity.as_str().to_owned(),
            summary: self.summary.clone(),
            evidence: self.evidence.to_string(),
            observed_at: self.observed_at.0,
            acknowledged: None,
        }
    }
}

/// A container's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not seen (engine unreachable, container missing, not checked yet).
    Unknown,
    /// Seen, nothing above low.
    Healthy,
    /// Seen, medium or high findings.
    Degraded,
    /// Critical findings, or quarantined.
    Compromised,
}

impl Health {
    /// The health `findings` add up to for a container the monitor can see.
    #[must_use]
    pub fn of(findings: &[Finding], quarantined: bool) -> Self {
        let worst = findings.iter().map(|finding| finding.severity).max();
        match worst {
            _ if quarantined => Self::Compromised,
            Some(Severity::Critical) => Self::Compromised,
            Some(Severity::High | Severity::Medium) => Self::Degraded,
            Some(Severity::Low | Severity::Info) | None => Self::Healthy,
        }
    }

    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Compromised => "compromised",
        }
    }
}

/// A quarantine in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineState {
    /// Since when.
    pub since: UnixMillis,
    /// The finding that set it off.
    pub reason: String,
    /// The snapshot taken.
    pub snapshot_id: String,
    /// "verified", or "incomplete: …" naming what is not isolated yet.
    pub isolation: String,
}

impl QuarantineState {
    /// Whether an inspect showed the container isolated.
    #[must_use]
    pub fn verified(&self) -> bool {
        self.isolation == "verified"
    }
}

/// What the monitor knows about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// The configured name.
    pub container: String,
    /// Overall state.
    pub health: Health,
    /// Why (for `Unknown`: what cannot be seen).
    pub reason: String,
    /// Open findings from the latest checks and events.
    pub findings: Vec<Finding>,
    /// Set while quarantined.
    pub quarantine: Option<QuarantineState>,
    /// When last checked.
    pub checked_at: UnixMillis,
    /// Whether a baseline is pinned.
    pub baseline_pinned: bool,
}

impl ContainerStatus {
    /// A container not seen yet.
    #[must_use]
    pub fn unseen(container: &str, reason: &str, now: UnixMillis) -> Self {
        Self {
            container: container.to_owned(),
            health: Health::Unknown,
            reason: reason.to_owned(),
            findings: Vec::new(),
            quarantine: None,
            checked_at: now,
            baseline_pinned: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding::new(
            "c",
            "t",
            severity,
            "s",
            serde_json::Value::Null,
            UnixMillis(0),
        )
    }

    #[test]
    fn health_follows_the_worst_finding_and_quarantine() {
        assert_eq!(Health::of(&[], false), Health::Healthy);
        assert_eq!(
            Health::of(&[finding(Severity::Low)], false),
            Health::Healthy
        );
        assert_eq!(
            Health::of(&[finding(Severity::Low), finding(Severity::High)], false),
            Health::Degraded
        );
        assert_eq!(
            Health::of(&[finding(Severity::Critical)], false),
            Health::Compromised
        );
        assert_eq!(Health::of(&[], true), Health::Compromised);
    }

    #[test]
    fn summaries_carry_no_control_characters() {
        let finding = Finding::new(
            "c",
            "files.new_executable",
            Severity::Critical,
            "1 new executable: /tmp/x\n\x1b[2Kall clear",
            serde_json::json!({}),
            UnixMillis(0),
        );
        assert_eq!(
            finding.summary,
            "1 new executable: /tmp/x\u{fffd}\u{fffd}[2Kall clear"
        );
    }

    #[test]
    fn severity_names_round_trip() {
        for name in ["info", "low", "medium", "high", "critical"] {
            assert_eq!(Severity::parse(name).unwrap().as_str(), name);
        }
        assert!(Severity::parse("severe").is_none());
    }
}
