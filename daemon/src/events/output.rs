//! One receiver of records, whichever kind it is.
//!
//! Invariant: every kind answers a delivery with how many records of the
//! batch arrived, in order — all or none for syslog and the webhook — so
//! the cursor never passes a record that did not arrive.

#[cfg(unix)]
use super::journald;
use super::{record::EventRecord, syslog, webhook};
use crate::clock::Clock;

/// One receiver of records.
#[derive(Debug)]
pub enum Output {
    /// The systemd journal.
    #[cfg(unix)]
    Journald(journald::JournaldOutput),
    /// A syslog collector.
    Syslog(syslog::SyslogOutput),
    /// An HTTP webhook.
    Webhook(Box<webhook::WebhookOutput>),
}

impl Output {
    /// The output's name: its cursor's key and its label in logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(unix)]
            Self::Journald(_) => "journald",
            Self::Syslog(_) => "syslog",
            Self::Webhook(_) => "webhook",
        }
    }

    /// Where it delivers (a changed destination starts at the log's head).
    #[must_use]
    pub fn destination(&self) -> String {
        match self {
            #[cfg(unix)]
            Self::Journald(output) => output.destination(),
            Self::Syslog(output) => output.destination(),
            Self::Webhook(output) => output.destination(),
        }
    }

    /// Sends `batch` in order: how many arrived and, if not all, why.
    pub(super) async fn deliver(
        &self,
        batch: &[EventRecord],
        clock: &dyn Clock,
    ) -> (usize, Option<String>) {
        let all_or_none = |result: Result<(), String>| match result {
            Ok(()) => (batch.len(), None),
            Err(why) => (0, Some(why)),
        };
        match self {
            #[cfg(unix)]
            Self::Journald(output) => output.deliver(batch).await,
            Self::Syslog(output) => all_or_none(output.deliver(batch).await),
            Self::Webhook(output) => {
                all_or_none(output.deliver(batch, clock.now().0.div_euclid(1_000)).await)
            }
        }
    }
}
