//! How many refused calls of one peer uid are audited one by one: the first
//! `per_minute` of each minute of that uid, separately for refusals without
//! a session (no or bad token, unknown RPC) and refusals of a signed-in
//! user (forbidden, not elevated, locked by a quarantine) — so junk never
//! spends the budget that records a user's probing. Beyond, refusals are
//! counted; the count goes with the uid's next audited refusal, or, when
//! its minute is over, into an entry of its own ([`record_owed`], taken
//! every second while serving and at shutdown). One local user sending
//! refused calls as fast as the socket takes them grows the audit log (and
//! every event output) by a bounded number of entries a minute instead of
//! hundreds a second.
//!
//! Invariant: one uid's refusals never spend another uid's budget, nor one
//! class the other's; each (uid, class)'s first `per_minute` refusals of
//! every minute are audited in full, the last saying more will be counted;
//! a refusal not audited is counted, and every count is audited — with the
//! next audited refusal, at the end of its minute, or at shutdown — never
//! forgotten while the daemon runs. At most [`MAX_WINDOWS`] uids are
//! remembered; past them (uids whose minute is over and who owe nothing
//! are forgotten first) the rest share one overflow budget.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use crate::{
    audit::{Actor, AuditEvent, AuditLog},
    clock::UnixMillis,
    transport::PeerCredentials,
};

/// How long a budget lasts.
const WINDOW_MS: i64 = 60_000;
/// (uid, class) windows remembered at most, besides the overflow's.
const MAX_WINDOWS: usize = 8_192;

/// Which budget a refusal spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    /// No session: no or a bad token, an unknown RPC, no credentials.
    Anonymous,
    /// A signed-in user refused: forbidden, not elevated, quarantine-locked.
    SignedIn,
}

/// Whose budget: a peer uid, or the overflow all uids share past
/// [`MAX_WINDOWS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Uid(Option<u32>),
    Overflow,
}

/// Refusals audited per peer uid, class and minute.
#[derive(Debug)]
pub struct RefusalBudget {
    per_minute: u32,
    windows: Mutex<HashMap<(Bucket, RefusalClass), Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: UnixMillis,
    audited: u32,
    not_audited: u64,
    /// The last refused peer of this bucket (the actor of a count's entry).
    peer: Option<PeerCredentials>,
}

impl Window {
    /// Whether its minute is over at `now` (a clock set back ends it too).
    fn over(&self, now: UnixMillis) -> bool {
        !(0..WINDOW_MS).contains(&now.0.saturating_sub(self.started.0))
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Audit it.
    Audit {
        /// Refusals of this budget counted but not audited yet.
        not_audited_before: u64,
        /// It spends the budget for this minute: more will be counted.
        last_this_minute: bool,
    },
    /// Count it only.
    Count,
}

/// Refusals counted but not audited, taken out to be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The last refused peer (`None` for the overflow).
    pub peer: Option<PeerCredentials>,
    /// Which budget.
    pub class: RefusalClass,
    /// How many.
    pub count: u64,
    /// Since when (the start of their minute).
    pub since: UnixMillis,
}

impl RefusalBudget {
    /// A budget of `per_minute` audited refusals per uid and class (at
    /// least 1).
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The verdict on a refusal of `peer` (`None`: no credentials) in
    /// `class` at `now`.
    pub fn judge(
        &self,
        peer: Option<PeerCredentials>,
        class: RefusalClass,
        now: UnixMillis,
    ) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = (Bucket::Uid(peer.map(|peer| peer.uid)), class);
        if !windows.contains_key(&key) && windows.len() >= MAX_WINDOWS {
            windows.retain(|_, window| !(window.over(now) && window.not_audited == 0));
            if windows.len() >= MAX_WINDOWS {
                key = (Bucket::Overflow, class);
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            audited: 0,
            not_audited: 0,
            peer: None,
        });
        window.peer = if key.0 == Bucket::Overflow {
            None
        } else {
            peer
        };
        if window.over(now) {
            window.started = now;
            window.audited = 0;
        }
        if window.audited >= self.per_minute {
            window.not_audited = window.not_audited.saturating_add(1);
            return Verdict::Count;
        }
        window.audited += 1;
        let last_this_minute = window.audited == self.per_minute;
        if last_this_minute {
            tracing::warn!(
                uid = peer.map(|peer| peer.uid),
                ?class,
                "refusals of this OS user past its budget this minute are counted, not audited"
            );
        }
        Verdict::Audit {
            not_audited_before: std::mem::take(&mut window.not_audited),
            last_this_minute,
        }
    }

    /// Takes the counts of budgets whose minute is over at `now` (of every
    /// budget with `everything`, at shutdown); windows that owe nothing
    /// and are over are forgotten.
    pub fn take_owed(&self, now: UnixMillis, everything: bool) -> Vec<Owed> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut owed = Vec::new();
        for ((_, class), window) in windows.iter_mut() {
            if window.not_audited > 0 && (everything || window.over(now)) {
                owed.push(Owed {
                    peer: window.peer,
                    class: *class,
                    count: std::mem::take(&mut window.not_audited),
                    since: window.started,
                });
            }
        }
        windows.retain(|_, window| !(window.over(now) && window.not_audited == 0));
        owed
    }
}

/// Audits counts taken with [`RefusalBudget::take_owed`]: one entry per
/// budget, naming how many refusals were not audited one by one since when.
pub async fn record_owed(audit: AuditLog, owed: Vec<Owed>) {
    for owed in owed {
        let whose = match (owed.peer, owed.class) {
            (None, _) => "OS users past the first remembered ones",
            (Some(_), RefusalClass::Anonymous) => "this OS user without a session",
            (Some(_), RefusalClass::SignedIn) => "this OS user's signed-in users",
        };
        let reason = format!(
            "{} refusals of {whose} since {} ms (Unix) were counted, not audited one by one (audit.refusals_per_minute_per_uid)",
            owed.count, owed.since.0
        );
        let event = AuditEvent::call_refused("(counted refusals)", &reason);
        audit.record_or_log(Actor::peer(owed.peer), event).await;
    }
}

#[cfg(test)]
#[path = "refusal_budget_tests.rs"]
mod tests;
