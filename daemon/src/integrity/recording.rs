//! Which of a sweep's findings go into the history (and to watchers).
//!
//! Invariant: a sweep finding is recorded when it is new or says something
//! new (another summary, a higher severity) — at once if its severity
//! rose, otherwise at most once per interval per check, so a check that
//! flaps cannot flood the history; one held back is recorded at the first
//! sweep after the interval if it still holds, so none is lost for good.

use std::collections::HashMap;

use super::finding::{Finding, Severity};
use crate::clock::UnixMillis;

/// What was last recorded of one check.
#[derive(Debug, Clone)]
struct Recorded {
    at: UnixMillis,
    severity: Severity,
    /// What it said; `None` once it stopped holding.
    summary: Option<String>,
}

/// What was recorded of each check of one container.
#[derive(Debug, Default)]
pub struct Recordings {
    by_check: HashMap<&'static str, Recorded>,
}

impl Recordings {
    /// The findings of `current` (the sweep's whole result) to record now;
    /// `spacing_ms` apart at most for one check unless its severity rose.
    pub fn to_record(
        &mut self,
        current: &[Finding],
        now: UnixMillis,
        spacing_ms: i64,
    ) -> Vec<Finding> {
        for (check, recorded) in &mut self.by_check {
            if !current.iter().any(|finding| finding.check_id == *check) {
                recorded.summary = None;
            }
        }
        let mut record = Vec::new();
        for finding in current {
            let last = self.by_check.get(finding.check_id);
            let says_more = last.is_none_or(|last| {
                last.summary.as_deref() != Some(finding.summary.as_str())
                    || finding.severity > last.severity
            });
            let due = last.is_none_or(|last| {
                finding.severity > last.severity || now.0.saturating_sub(last.at.0) >= spacing_ms
            });
            if says_more && due {
                self.by_check.insert(
                    finding.check_id,
                    Recorded {
                        at: now,
                        severity: finding.severity,
                        summary: Some(finding.summary.clone()),
                    },
                );
                record.push(finding.clone());
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn drift(summary: &str, severity: Severity, at: i64) -> Finding {
        Finding::new(
            "c",
            "files.new_executable",
            severity,
            summary.to_owned(),
            json!({}),
            UnixMillis(at),
        )
    }

    #[test]
    fn a_flapping_check_is_recorded_once_per_interval_and_nothing_is_lost() {
        let mut recordings = Recordings::default();
        let one = drift("1 new executable: /tmp/a", Severity::High, 0);
        assert_eq!(
            recordings
                .to_record(std::slice::from_ref(&one), UnixMillis(0), 1000)
                .len(),
            1
        );
        // The same again: nothing new.
        assert!(
            recordings
                .to_record(std::slice::from_ref(&one), UnixMillis(100), 1000)
                .is_empty()
        );
        // Something new within the interval waits…
        let two = drift("2 new executables: /tmp/a, /tmp/evil", Severity::High, 200);
        assert!(
            recordings
                .to_record(std::slice::from_ref(&two), UnixMillis(200), 1000)
                .is_empty()
        );
        assert!(
            recordings
                .to_record(std::slice::from_ref(&two), UnixMillis(600), 1000)
                .is_empty()
        );
        // …and is recorded once the interval has passed, still holding.
        assert_eq!(
            recordings.to_record(std::slice::from_ref(&two), UnixMillis(1000), 1000),
            std::slice::from_ref(&two)
        );
        // Gone and back (flapping) within the interval: held back, then once.
        assert!(recordings.to_record(&[], UnixMillis(1100), 1000).is_empty());
        assert!(
            recordings
                .to_record(std::slice::from_ref(&two), UnixMillis(1200), 1000)
                .is_empty()
        );
        assert_eq!(
            recordings
                .to_record(std::slice::from_ref(&two), UnixMillis(2000), 1000)
                .len(),
            1
        );
        // A higher severity is recorded at once.
        let worse = drift(
            "2 new executables: /tmp/a, /tmp/evil",
            Severity::Critical,
            2100,
        );
        assert_eq!(
            recordings.to_record(std::slice::from_ref(&worse), UnixMillis(2100), 1000),
            [worse]
        );
    }
}
