//! What `grpc.health.v1` says, and why: judged from the same probe the
//! watchdog reads, every [`HEALTH_EVERY`].
//!
//! Invariant: the daemon as a whole (service `""`) and every service are
//! NOT_SERVING while the audit log cannot commit — its last batch failed
//! and the write lock still cannot be taken, its writer is stuck on a
//! commit longer than [`AUDIT_PATIENCE`], or the writer is gone — or the
//! store does not answer: every call is audited, so none can be served as
//! it should. The integrity services (Integrity, Environment) are also
//! NOT_SERVING while the monitor has no engine connection, or monitoring is
//! off. Every NOT_SERVING carries a reason a person can act on, and no
//! detail beyond it (anyone with socket access may read it).

use std::time::Duration;

use super::supervision::{AUDIT_PATIENCE, Probe};
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

/// Judges `probe` at `now`.
#[must_use]
pub fn judge(now: UnixMillis, probe: &Probe) -> Health {
    let stuck_commit = probe
        .audit_committing_since
        .is_some_and(|since| now.0.saturating_sub(since.0) > AUDIT_PATIENCE.as_millis() as i64);
    let overall = if !probe.audit_running {
        Some("the audit writer has stopped".to_owned())
    } else if probe.audit_failing {
        Some("the audit log cannot commit (the database refuses writes)".to_owned())
    } else if stuck_commit {
        Some(format!(
            "the audit log has not committed for over {} s",
            AUDIT_PATIENCE.as_secs()
        ))
    } else if probe.store.is_err() {
        Some("the store does not answer".to_owned())
    } else {
        None
    };
    let engine = match probe.engine_connected {
        None => Some("integrity monitoring is off (integrity.enabled = false)"),
        Some(false) => Some("the container engine is unreachable"),
        Some(true) => None,
    };
    let integrity = match (&overall, engine) {
        (Some(overall), Some(engine)) => Some(format!("{overall}; {engine}")),
        (Some(overall), None) => Some(overall.clone()),
        (None, Some(engine)) => Some(engine.to_owned()),
        (None, None) => None,
    };
    Health { overall, integrity }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> Probe {
        Probe {
            store: Ok(()),
            audit_running: true,
            audit_committing_since: None,
            audit_failing: false,
            engine_connected: Some(true),
            monitor: Some((Some(UnixMillis(0)), Duration::from_secs(60))),
            ready_at: UnixMillis(0),
        }
    }

    #[test]
    fn everything_serves_while_the_audit_log_commits_and_the_engine_answers() {
        assert_eq!(judge(UnixMillis(1_000), &serving()), Health::default());
    }

    #[test]
    fn an_audit_log_that_cannot_commit_stops_every_service() {
        let now = UnixMillis(100_000);
        let failing = Probe {
            audit_failing: true,
            ..serving()
        };
        let health = judge(now, &failing);
        assert!(health.overall.as_deref().unwrap().contains("cannot commit"));
        assert_eq!(health.integrity, health.overall);

        // A commit waiting past the patience, on the injected clock.
        let patience = AUDIT_PATIENCE.as_millis() as i64;
        let waiting = |since: i64| Probe {
            audit_committing_since: Some(UnixMillis(since)),
            ..serving()
        };
        assert_eq!(judge(now, &waiting(now.0 - patience)).overall, None);
        let stuck = judge(now, &waiting(now.0 - patience - 1));
        assert!(stuck.overall.unwrap().contains("not committed for over"));

        let gone = Probe {
            audit_running: false,
            ..serving()
        };
        assert!(judge(now, &gone).overall.unwrap().contains("stopped"));
        let mute = Probe {
            store: Err("database is locked".to_owned()),
            ..serving()
        };
        let mute = judge(now, &mute).overall.unwrap();
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
        );
        assert!(off.integrity.unwrap().contains("monitoring is off"));
        let both = judge(
            now,
            &Probe {
                engine_connected: Some(false),
                audit_failing: true,
                ..serving()
            },
        );
        let why = both.integrity.unwrap();
        assert!(
            why.contains("cannot commit") && why.contains("unreachable"),
            "{why}"
        );
    }
}
