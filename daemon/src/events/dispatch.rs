//! One output's delivery loop: follow the audit log's committed head, send
//! what lies beyond the output's cursor in batches, move the cursor only
//! past what the receiver acknowledged, and retry with growing waits while
//! it does not.
//!
//! Invariant: the loop only reads the store and its own cursor row — it
//! never holds up the audit writer or a caller, whatever the receiver does;
//! an entry is skipped only when the output is more than `max_backlog`
//! behind, and then an `events_skipped` entry says which.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{output::Output, record::EventRecord};
use crate::{
    audit::{Actor, AuditEvent, AuditLog},
    clock::Clock,
    store::Store,
};

/// What a delivery loop needs.
pub struct Dispatch {
    /// Where records go.
    pub output: Output,
    /// Where entries and the cursor are.
    pub store: Store,
    /// To record skips.
    pub audit: AuditLog,
    /// The newest committed entry.
    pub head: watch::Receiver<i64>,
    /// The records' host.
    pub host: String,
    /// Most records per delivery.
    pub batch: u32,
    /// Most entries an output may be behind before it skips ahead.
    pub max_backlog: u64,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Becomes `true` when the daemon stops: deliver what is committed, then end.
    pub stop: watch::Receiver<bool>,
    /// Delivered, failed and behind, for Prometheus.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The wait before the retry after `failures` failed deliveries in a row:
/// 1 s, doubling, at most `max`.
#[must_use]
pub fn retry_wait(failures: u32, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    Duration::from_secs(1 << doublings).min(max)
}

impl Dispatch {
    /// Runs until the daemon stops and everything committed was delivered
    /// (or a delivery fails while stopping: the rest goes out after the next
    /// start, from the stored cursor).
    pub async fn run(mut self) {
        let name = self.output.name();
        let mut failures = 0_u32;
        let mut cursor = loop {
            match self.store.output_cursor(name).await {
                Ok(Some(cursor)) => break cursor,
                // A new output starts with what comes next, not the past.
                Ok(None) => break *self.head.borrow(),
                Err(err) => {
                    failures += 1;
                    tracing::error!(output = name, error = %err, "event cursor unreadable");
                    if *self.stop.borrow() {
                        return;
                    }
                    self.pause(retry_wait(failures, self.retry_max)).await;
                }
            }
        };
        self.save(cursor).await;
        let mut writer_gone = false;
        loop {
            let head = *self.head.borrow_and_update();
            let stopping = *self.stop.borrow();
            let behind = u64::try_from(head - cursor).unwrap_or(0);
            self.metrics
                .event_output(name, |counts| counts.behind = behind);
            if cursor >= head {
                if stopping || writer_gone {
                    return;
                }
                tokio::select! {
                    changed = self.head.changed() => writer_gone = changed.is_err(),
                    _ = self.stop.changed() => {}
                }
                continue;
            }
            if behind > self.max_backlog {
                cursor = self.skip(cursor, head).await;
            }
            let rows = match self.store.audit_rows_after(cursor, self.batch).await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::error!(output = name, error = %err, "audit entries unreadable");
                    failures += 1;
                    if stopping {
                        return;
                    }
                    self.pause(retry_wait(failures, self.retry_max)).await;
                    continue;
                }
            };
            let records: Vec<EventRecord> = rows
                .iter()
                .map(|row| EventRecord::of(row, &self.host))
                .collect();
            let (delivered, error) = self.output.deliver(&records, self.clock.as_ref()).await;
            self.metrics.event_output(name, |counts| {
                counts.delivered += delivered as u64;
                counts.failed += u64::from(error.is_some());
            });
            if let Some(last) = delivered.checked_sub(1).and_then(|i| records.get(i)) {
                cursor = i64::try_from(last.id).unwrap_or(cursor);
                self.save(cursor).await;
            }
            match error {
                None => {
                    if failures > 0 {
                        tracing::info!(output = name, failures, "events are delivered again");
                    }
                    failures = 0;
                }
                Some(why) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(output = name, error = %why, "event delivery failed; retrying");
                    }
                    if stopping {
                        return;
                    }
                    self.pause(retry_wait(failures, self.retry_max)).await;
                }
            }
        }
    }

    /// Waits `wait`, or less if the daemon begins stopping meanwhile (it
    /// then gets one more try at what is committed).
    async fn pause(&mut self, wait: Duration) {
        // A real wait between retries to a receiver (like the engine's
        // reconnection backoff): nothing expires by it.
        #[allow(clippy::disallowed_methods)]
        let wait = tokio::time::sleep(wait);
        tokio::select! {
            () = wait => {}
            _ = self.stop.changed() => {}
        }
    }

    /// Skips to `max_backlog` entries behind `head` and says so in the log.
    async fn skip(&self, cursor: i64, head: i64) -> i64 {
        let backlog = i64::try_from(self.max_backlog).unwrap_or(i64::MAX);
        let skipped_to = head.saturating_sub(backlog);
        let (first, last) = (cursor + 1, skipped_to);
        tracing::error!(
            output = self.output.name(),
            first,
            last,
            "event output too far behind: entries skipped"
        );
        self.save(skipped_to).await;
        let event = AuditEvent::EventsSkipped {
            output: self.output.name().to_owned(),
            first: u64::try_from(first).unwrap_or(0),
            last: u64::try_from(last).unwrap_or(0),
        };
        self.audit.record_soon(Actor::daemon(), event);
        skipped_to
    }

    /// Stores the cursor; a failure only means entries are sent again.
    async fn save(&self, cursor: i64) {
        let name = self.output.name();
        if let Err(err) = self
            .store
            .set_output_cursor(name, cursor, self.clock.now().0)
            .await
        {
            tracing::error!(output = name, error = %err, "event cursor not stored: entries will be sent again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_the_limit() {
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=9).map(|n| retry_wait(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_wait(u32::MAX, max), max);
        assert_eq!(
            retry_wait(3, Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }
}
