//! Event findings that stay open until someone acknowledges them.
//!
//! Invariant: a finding of an event (an exec, a copy-in, a crash, a network
//! connected during quarantine) stays open — in memory and in the store,
//! across restarts — until an elevated admin acknowledges it with a note
//! (audited) or a super-admin releases the container's quarantine (audited,
//! with its note); nothing else closes it, RunChecks included. Repeats of
//! an open finding count up in one entry, so a crash loop cannot grow the
//! set. Memory changes first (the status shows a finding at once); the
//! store follows under a lock that acknowledging holds too, and stores what
//! memory then holds — so both end the same, whatever the interleaving.

use serde_json::json;

use super::{
    error::{IntegrityError, checked_note},
    events,
    finding::{ContainerStatus, Finding},
    shared::{MonitorShared, Sight},
};
use crate::{
    audit::{Actor, IntegrityAction},
    store::OpenFindingRow,
};

/// The store row of open finding `finding`.
fn open_row(finding: &Finding) -> OpenFindingRow {
    OpenFindingRow {
        latest: finding.history_row(),
        first_seen: finding.first_seen.0,
        occurrences: i64::from(finding.occurrences),
    }
}

impl MonitorShared {
    /// Opens event finding `finding` in memory (or counts a repeat of the
    /// open one); returns it as now open. [`Self::keep_open`] stores it.
    pub(super) fn open_event(&self, finding: Finding) -> Finding {
        let mut watched = self.watched();
        let Some(entry) = watched.get_mut(&finding.container) else {
            return finding;
        };
        let open = match entry
            .event_findings
            .iter()
            .position(|earlier| earlier.check_id == finding.check_id)
        {
            Some(at) => {
                let earlier = entry.event_findings.remove(at);
                finding.repeating(&earlier)
            }
            None => finding,
        };
        entry.event_findings.push(open.clone());
        open
    }

    /// Stores the open finding `check_id` of `container` as memory has it
    /// now (nothing, if it was acknowledged meanwhile).
    pub(super) async fn keep_open(&self, container: &str, check_id: &str) {
        let _together = self.open_findings.lock().await;
        let open = self.watched().get(container).and_then(|entry| {
            entry
                .event_findings
                .iter()
                .find(|finding| finding.check_id == check_id)
                .map(open_row)
        });
        if let Some(row) = open
            && let Err(err) = self.store.keep_open_finding(&row).await
        {
            tracing::error!(error = %err, "open finding not stored; it stays open until restart");
        }
    }

    /// Closes the open event findings `check_ids` of `container` (the
    /// caller is an elevated admin: the gate checked).
    pub(super) async fn acknowledge(
        &self,
        actor: Actor,
        container: &str,
        check_ids: &[String],
        note: &str,
    ) -> Result<Vec<ContainerStatus>, IntegrityError> {
        let note = checked_note(note, "say why these findings need no more action")?;
        let name = self.profile(container)?.name.clone();
        let mut wanted: Vec<String> = Vec::new();
        for id in check_ids {
            if events::event_check(id).is_none() {
                return Err(IntegrityError::InvalidInput {
                    field: "check_ids",
                    reason: format!(
                        "{id:?} is not an event finding: findings of checks close by themselves once the condition is gone (fix it, or pin a new baseline)"
                    ),
                });
            }
            if !wanted.contains(id) {
                wanted.push(id.clone());
            }
        }
        if wanted.is_empty() {
            return Err(IntegrityError::InvalidInput {
                field: "check_ids",
                reason: "name the open event findings to acknowledge, e.g. \"event.exec\""
                    .to_owned(),
            });
        }
        let by = actor.user.clone().unwrap_or_default();
        let closed = self.close(&name, Some(&wanted), &by, note).await?;
        self.refresh(&name, Sight::Same);
        let detail = json!({
            "acknowledged": closed
                .iter()
                .map(|(id, count)| json!({ "check_id": id, "occurrences": count }))
                .collect::<Vec<_>>(),
            "note": note,
        });
        self.record(
            actor,
            IntegrityAction::FindingsAcknowledged,
            &name,
            detail.to_string(),
        )
        .await;
        Ok(self.status())
    }

    /// Closes `check_ids` of `container` (all that are open when `None`)
    /// in the store, then in memory, under the lock [`Self::keep_open`]
    /// takes; refuses (closing nothing) if a named one is not open.
    async fn close(
        &self,
        container: &str,
        check_ids: Option<&[String]>,
        by: &str,
        note: &str,
    ) -> Result<Vec<(String, i64)>, IntegrityError> {
        let _together = self.open_findings.lock().await;
        let open: Vec<String> = self
            .watched()
            .get(container)
            .map(|entry| {
                entry
                    .event_findings
                    .iter()
                    .map(|finding| finding.check_id.to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let check_ids = check_ids.unwrap_or(&open);
        if let Some(missing) = check_ids.iter().find(|id| !open.contains(id)) {
            return Err(IntegrityError::Refused(format!(
                "{container} has no open {missing} finding (open: {})",
                if open.is_empty() {
                    "none".to_owned()
                } else {
                    open.join(", ")
                }
            )));
        }
        let closed = self
            .store
            .acknowledge_findings(container, check_ids, by, note, self.clock.now().0)
            .await?;
        if let Some(entry) = self.watched().get_mut(container) {
            entry
                .event_findings
                .retain(|finding| !check_ids.iter().any(|id| id == finding.check_id));
        }
        Ok(closed
            .into_iter()
            .map(|closed| (closed.check_id, closed.occurrences))
            .collect())
    }

    /// Closes every open event finding of `container` (its quarantine was
    /// released, with `note`); returns the check ids closed.
    pub(super) async fn close_all(&self, container: &str, by: &str, note: &str) -> Vec<String> {
        match self.close(container, None, by, note).await {
            Ok(closed) => closed.into_iter().map(|(id, _)| id).collect(),
            Err(err) => {
                tracing::error!(error = %err, "open findings not closed at release");
                Vec::new()
            }
        }
    }
}
