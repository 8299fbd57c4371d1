//! One output's delivery loop: follow the audit log's committed head, send
//! what lies beyond the output's cursor in batches, move the cursor only
//! past what the receiver acknowledged, and retry with growing waits while
//! it does not.
//!
//! Invariant: the loop reads the store and writes only its own cursor row
//! (at most once a second while entries keep coming) — whatever the
//! receiver does, it never holds up a caller; an entry is skipped only when
//! the output is more than `max_backlog` behind, and then an
//! `events_skipped` entry says which.

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
    /// The newest committed entry when the outputs were set up, before
    /// start-up recorded anything: where a new destination begins (read
    /// then, not when this task first runs, so nothing recorded in between
    /// is missed).
    pub head_at_start: i64,
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

/// How often a cursor that moved is written while entries keep coming (it
/// is written at once when the output has caught up or the daemon stops).
const SAVE_EVERY_MS: i64 = 1_000;

/// The cursor as last written.
#[derive(Debug, Clone, Copy)]
struct Saved {
    cursor: i64,
    at_ms: i64,
}

impl Dispatch {
    /// Runs until the daemon stops and everything committed was delivered
    /// (or a delivery fails while stopping: the rest goes out after the next
    /// start, from the stored cursor).
    pub async fn run(mut self) {
        let name = self.output.name();
        let Some(mut cursor) = self.starting_cursor().await else {
            return;
        };
        let life = match self.store.store_life().await {
            Ok(life) => life,
            Err(err) => {
                tracing::error!(output = name, error = %err, "store life unreadable");
                "unknown".to_owned()
            }
        };
        let mut saved = self.save(cursor).await;
        let mut failures = 0_u32;
        let mut writer_gone = false;
        loop {
            let head = *self.head.borrow_and_update();
            let stopping = *self.stop.borrow();
            self.metrics
                .event_output(name, |counts| counts.delivered_through = cursor);
            if cursor >= head {
                saved = self.save_if_moved(cursor, saved).await;
                if stopping || writer_gone {
                    return;
                }
                writer_gone = self.await_news().await;
                continue;
            }
            if u64::try_from(head - cursor).unwrap_or(0) > self.max_backlog {
                cursor = self.skip(cursor, head).await;
                saved = self.save(cursor).await;
            }
            let rows = match self.store.audit_rows_after(cursor, self.batch).await {
                // None there yet (never expected: sequences have no gaps).
                Ok(rows) if rows.is_empty() => {
                    writer_gone = self.await_news().await;
                    continue;
                }
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
                .map(|row| EventRecord::of(row, &self.host, &life))
                .collect();
            let (delivered, error) = self.output.deliver(&records, self.clock.as_ref()).await;
            self.metrics.event_output(name, |counts| {
                counts.delivered += delivered as u64;
                counts.failed += u64::from(error.is_some());
            });
            if let Some(last) = delivered.checked_sub(1).and_then(|i| records.get(i)) {
                cursor = i64::try_from(last.id).unwrap_or(cursor);
                if self.clock.now().0 - saved.at_ms >= SAVE_EVERY_MS {
                    saved = self.save(cursor).await;
                }
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
                    saved = self.save_if_moved(cursor, saved).await;
                    if stopping {
                        return;
                    }
                    self.pause(retry_wait(failures, self.retry_max)).await;
                }
            }
        }
    }

    /// Where to start: the stored cursor if it was for this destination,
    /// else the log's head at start-up (a new receiver gets this run's
    /// entries, not the past). `None`: the daemon stopped before the cursor could be read.
    async fn starting_cursor(&mut self) -> Option<i64> {
        let name = self.output.name();
        let mut failures = 0_u32;
        loop {
            match self.store.output_cursor(name).await {
                Ok(Some((cursor, destination))) if destination == self.output.destination() => {
                    return Some(cursor);
                }
                Ok(Some(_)) => {
                    tracing::info!(
                        output = name,
                        "a new destination: its events start at the log's head"
                    );
                    return Some(self.head_at_start);
                }
                Ok(None) => return Some(self.head_at_start),
                Err(err) => {
                    failures += 1;
                    tracing::error!(output = name, error = %err, "event cursor unreadable");
                    if *self.stop.borrow() {
                        return None;
                    }
                    self.pause(retry_wait(failures, self.retry_max)).await;
                }
            }
        }
    }

    /// Waits for a new entry or the stop; `true` if the audit writer is gone.
    async fn await_news(&mut self) -> bool {
        tokio::select! {
            changed = self.head.changed() => changed.is_err(),
            _ = self.stop.changed() => false,
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

    /// Skips to nine tenths of `max_backlog` behind `head` (so the next
    /// entries do not make it skip again at once) and says so in the log.
    async fn skip(&self, cursor: i64, head: i64) -> i64 {
        let keep = i64::try_from(self.max_backlog / 10 * 9).unwrap_or(i64::MAX);
        let skipped_to = head.saturating_sub(keep).max(cursor);
        let (first, last) = (cursor + 1, skipped_to);
        tracing::error!(
            output = self.output.name(),
            first,
            last,
            "event output too far behind: entries skipped"
        );
        let event = AuditEvent::EventsSkipped {
            output: self.output.name().to_owned(),
            first: u64::try_from(first).unwrap_or(0),
            last: u64::try_from(last).unwrap_or(0),
        };
        self.audit.record_or_log(Actor::daemon(), event).await;
        skipped_to
    }

    /// Writes `cursor` if it moved since `saved`.
    async fn save_if_moved(&self, cursor: i64, saved: Saved) -> Saved {
        if cursor == saved.cursor {
            saved
        } else {
            self.save(cursor).await
        }
    }

    /// Stores the cursor; a failure only means entries are sent again.
    async fn save(&self, cursor: i64) -> Saved {
        let name = self.output.name();
        let now = self.clock.now().0;
        let destination = self.output.destination();
        if let Err(err) = self
            .store
            .set_output_cursor(name, &destination, cursor, now)
            .await
        {
            tracing::error!(output = name, error = %err, "event cursor not stored: entries will be sent again");
        }
        Saved { cursor, at_ms: now }
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
