//! What `grpc.health.v1` says, and why: judged from memory every
//! [`HEALTH_EVERY`] (never waiting on the store), and with the store's
//! answer at each watchdog check.
//!
//! Invariant: the daemon as a whole (service `""`) and every service are
//! NOT_SERVING while the audit log cannot commit — its batches fail (until
//! one commits: while they fail, the daemon asks the log to record the gap,
//! and that entry committing is what ends it), a commit has waited longer
//! than callers wait for one (`audit.write_timeout_ms`), or the writer is
//! gone — or the store did not answer its last query: every call is
//! audited, so none can be served as it should. The integrity services
//! (Integrity, Environment) are also NOT_SERVING while the monitor has no
//! engine connection, has stopped or stalled, or monitoring is off; both
//! start NOT_SERVING until first judged, and everything says NOT_SERVING
//! once the daemon stops. Every NOT_SERVING carries a fixed reason a person
//! can act on and no detail beyond it (anyone with socket access may read
//! it).

use std::time::Duration;

use super::supervision::Probe;
use crate::clock::UnixMillis;

/// How often health is judged again.
pub const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// Why the daemon, and why its integrity services, do not serve (`None`:
/// they do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Why the daemon as a whole does not serve.
    pub overall: Option<String>,
    /// Why Integrity and Environment do not serve (the overall reason
    /// included).
    pub integrity: Option<String>,
}

impl Health {
    /// Before the first judgement: the integrity services have seen nothing yet.
    #[must_use]
    pub fn starting() -> Self {
        Self {
            overall: None,
            integrity: Some("the integrity monitor is starting".to_owned()),
        }
    }

    /// Once the daemon stops taking calls.
    #[must_use]
    pub fn stopping() -> Self {
        let why = Some("occcd is stopping".to_owned());
        Self {
            overall: why.clone(),
            integrity: why,
        }
    }
}

/// Judges `probe` at `now`; a commit waiting longer than `commit_patience`
/// (what callers wait) counts as not committing.
#[must_use]
pub fn judge(now: UnixMillis, probe: &Probe, commit_patience: Duration) -> Health {
    let waited =
        |since: UnixMillis| Duration::from_millis(now.0.saturating_sub(since.0).max(0) as u64);
    let overall = if !probe.audit_running {
        Some("the audit writer has stopped".to_owned())
    } else if probe.audit_failing_since.is_some() {
        Some("the audit log cannot commit (the database refuses writes)".to_owned())
    } else if probe
        .audit_committing_since
        .is_some_and(|since| waited(since) > commit_patience)
    {
        Some("the audit log is not committing in time (audited calls time out)".to_owned())
    } else if probe.store.is_err() {
        Some("the store does not answer".to_owned())
    } else {
        None
    };
    let monitor = match probe.monitor {
        None => Some("integrity monitoring is off (integrity.enabled = false)"),
        Some((None, patience)) if patience.is_zero() => Some("the integrity monitor has stopped"),
        Some((last, patience)) if waited(last.unwrap_or(probe.ready_at)) > patience => {
            Some("the integrity monitor has stalled")
        }
        Some(_) if probe.engine_connected == Some(false) => {
            Some("the container engine is unreachable")
        }
        Some(_) => None,
    };
    let integrity = match (&overall, monitor) {
        (Some(overall), Some(monitor)) => Some(format!("{overall}; {monitor}")),
        (Some(overall), None) => Some(overall.clone()),
        (None, Some(monitor)) => Some(monitor.to_owned()),
        (None, None) => None,
    };
    Health { overall, integrity }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(2);

    fn serving() -> Probe {
        Probe {
            store: Ok(()),
            audit_running: true,
            audit_committing_since: None,
            audit_failing_since: None,
            engine_connected: Some(true),
            // The monitor went round at 100 s: alive for every `now` below.
            monitor: Some((Some(UnixMillis(100_000)), Duration::from_secs(60))),
            ready_at: UnixMillis(0),
        }
    }

    #[test]
    fn everything_serves_while_the_audit_log_commits_and_the_engine_answers() {
        assert_eq!(
            judge(UnixMillis(1_000), &serving(), PATIENCE),
            Health::default()
        );
    }

    #[test]
    fn an_audit_log_that_cannot_commit_stops_every_service() {
        let now = UnixMillis(100_000);
        let failing = Probe {
            audit_failing_since: Some(UnixMillis(90_000)),
            ..serving()
        };
        let health = judge(now, &failing, PATIENCE);
        assert!(health.overall.as_deref().unwrap().contains("cannot commit"));
        assert_eq!(health.integrity, health.overall);

        // A commit waiting longer than callers wait, on the injected clock.
        let patience = PATIENCE.as_millis() as i64;
        let waiting = |since: i64| Probe {
            audit_committing_since: Some(UnixMillis(since)),
            ..serving()
        };
        assert_eq!(
            judge(now, &waiting(now.0 - patience), PATIENCE).overall,
            None
        );
        let stuck = judge(now, &waiting(now.0 - patience - 1), PATIENCE);
        assert!(stuck.overall.unwrap().contains("not committing in time"));

        let gone = Probe {
            audit_running: false,
            ..serving()
        };
        assert!(
            judge(now, &gone, PATIENCE)
                .overall
                .unwrap()
                .contains("stopped")
        );
        let mute = Probe {
            store: Err("database is locked".to_owned()),
            ..serving()
        };
        let mute = judge(now, &mute, PATIENCE).overall.unwrap();
        assert_eq!(mute, "the store does not answer", "no detail: {mute}");
    }

    #[test]
    fn the_integrity_services_stop_while_the_engine_is_unreachable_or_monitoring_is_off() {
        let now = UnixMillis(1_000);
        let blind = judge(
            now,
            &Probe {
                engine_connected: Some(false),
                ..serving()
            },
            PATIENCE,
        );
        assert_eq!(blind.overall, None, "the rest still serves");
        assert_eq!(
            blind.integrity.as_deref(),
            Some("the container engine is unreachable")
        );
        let off = judge(
            now,
            &Probe {
                engine_connected: None,
                monitor: None,
                ..serving()
            },
            PATIENCE,
        );
        assert!(off.integrity.unwrap().contains("monitoring is off"));
        let both = judge(
            now,
            &Probe {
                engine_connected: Some(false),
                audit_failing_since: Some(UnixMillis(500)),
                ..serving()
            },
            PATIENCE,
        );
        let why = both.integrity.unwrap();
        assert!(
            why.contains("cannot commit") && why.contains("unreachable"),
            "{why}"
        );

        // A monitor that stopped, or whose loop stalled past its patience
        // (on the injected clock), is not vouched for — engine or not.
        let stopped = Probe {
            monitor: Some((None, Duration::ZERO)),
            ..serving()
        };
        let stopped = judge(now, &stopped, PATIENCE).integrity.unwrap();
        assert!(stopped.contains("has stopped"), "{stopped}");
        let stalled = |last: i64| Probe {
            monitor: Some((Some(UnixMillis(last)), Duration::from_secs(60))),
            ..serving()
        };
        assert_eq!(
            judge(UnixMillis(60_000), &stalled(0), PATIENCE).integrity,
            None
        );
        let late = judge(UnixMillis(60_001), &stalled(0), PATIENCE);
        assert!(late.integrity.unwrap().contains("stalled"));
        assert_eq!(late.overall, None);
    }

    #[test]
    fn the_integrity_services_start_unvouched_and_everything_stops_with_the_daemon() {
        assert!(Health::starting().integrity.is_some());
        assert_eq!(Health::starting().overall, None);
        let stopping = Health::stopping();
        assert!(stopping.overall.is_some() && stopping.integrity.is_some());
    }
}
