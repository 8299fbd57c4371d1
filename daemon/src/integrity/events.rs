//! Engine events: which ones are findings, and the stream that resumes
//! where it stopped.
//!
//! Invariant: the stream always starts at the cursor of the last event
//! processed (the engine replays what it still holds), so a reconnect loses
//! no event the engine kept; classification is a pure function.

use std::collections::HashMap;

use bollard::{
    models::{EventMessage, EventMessageTypeEnum},
    query_parameters::EventsOptions,
};
use serde_json::json;

use super::finding::{Finding, Severity};
use crate::clock::UnixMillis;

/// What an event means for the monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum EventMeaning {
    /// A finding.
    Finding(Finding),
    /// State changed: check again (start, restart, unpause …).
    Recheck,
    /// The container is gone.
    Removed,
    /// Nothing to do.
    Ignore,
}

/// Every check id an event can open: these findings stay open until
/// acknowledged (and survive restarts).
pub const EVENT_CHECKS: [&str; 9] = [
    "event.exec",
    "event.copy_in",
    "event.oom",
    "event.died",
    "event.updated",
    "event.commit",
    "event.export",
    "event.unpaused_in_quarantine",
    "quarantine.network_connected",
];

/// The static check id named `id`, if events open it.
#[must_use]
pub fn event_check(id: &str) -> Option<&'static str> {
    EVENT_CHECKS.into_iter().find(|check| *check == id)
}

/// The container name a container event is about (without the leading `/`).
#[must_use]
pub fn container_name(event: &EventMessage) -> Option<String> {
    if event.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    attribute(event, "name")
}

fn attribute(event: &EventMessage, key: &str) -> Option<String> {
    event.actor.as_ref()?.attributes.as_ref()?.get(key).cloned()
}

/// The exec an `exec_create` / `exec_start` event names.
#[must_use]
pub fn exec_id(event: &EventMessage) -> Option<String> {
    attribute(event, "execID")
}

/// (container id, network name) of a network `connect` event.
#[must_use]
pub fn network_connect(event: &EventMessage) -> Option<(String, String)> {
    if event.typ != Some(EventMessageTypeEnum::NETWORK)
        || event.action.as_deref() != Some("connect")
    {
        return None;
    }
    Some((attribute(event, "container")?, attribute(event, "name")?))
}

/// Whether a container event can undo a quarantine's isolation (it was
/// unpaused, started again or its restart policy changed): the isolation
/// is then checked and fixed again.
#[must_use]
pub fn may_undo_isolation(event: &EventMessage) -> bool {
    event.typ == Some(EventMessageTypeEnum::CONTAINER)
        && matches!(
            event.action.as_deref(),
            Some("unpause" | "start" | "restart" | "update")
        )
}

/// The finding for `network` connected to quarantined `container`.
#[must_use]
pub fn reconnected(
    container: &str,
    network: &str,
    event: &EventMessage,
    now: UnixMillis,
) -> Finding {
    Finding::new(
        container,
        "quarantine.network_connected",
        Severity::Critical,
        format!(
            "network {network} was connected to the quarantined container; occcd disconnects it again"
        ),
        json!({ "network": network, "time_nano": event_nanos(event) }),
        now,
    )
}

/// Nanoseconds since the epoch of `event`.
#[must_use]
pub fn event_nanos(event: &EventMessage) -> Option<i64> {
    event
        .time_nano
        .or_else(|| event.time.map(|secs| secs.saturating_mul(1_000_000_000)))
}

/// What `event` about the watched container `container` means. Events the
/// daemon's own quarantine causes (pause, disconnect, update) are expected
/// while `quarantining`.
#[must_use]
pub fn classify(
    event: &EventMessage,
    container: &str,
    quarantining: bool,
    now: UnixMillis,
) -> EventMeaning {
    if event.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return EventMeaning::Ignore;
    }
    let action = event.action.clone().unwrap_or_default();
    let attributes: HashMap<String, String> = event
        .actor
        .as_ref()
        .and_then(|actor| actor.attributes.clone())
        .unwrap_or_default();
    let evidence = json!({
        "action": action,
        "attributes": attributes,
        "time_nano": event_nanos(event),
    });
    let finding = |check_id, severity, summary: String| {
        EventMeaning::Finding(Finding::new(
            container,
            check_id,
            severity,
            summary,
            evidence.clone(),
            now,
        ))
    };
    let verb = action.split(':').next().unwrap_or_default().trim();
    match verb {
        "exec_create" | "exec_start" => {
            // The summary names the program only: arguments may hold
            // secrets (`psql postgres://user:pw@db`) and summaries reach
            // audit entries and event outputs; the whole command stays in
            // the finding's evidence (encrypted store, sealed snapshot).
            let command = action.split_once(':').map_or("", |(_, rest)| rest.trim());
            let mut words = command.split_whitespace();
            let program: String = words.next().unwrap_or("?").chars().take(200).collect();
            let more = words.count();
            finding(
                "event.exec",
                Severity::Critical,
                format!(
                    "a process was started inside the container with exec: {program} ({more} argument{} not shown)",
                    if more == 1 { "" } else { "s" }
                ),
            )
        }
        "extract-to-dir" => finding(
            "event.copy_in",
            Severity::High,
            "files were copied into the container (docker cp)".to_owned(),
        ),
        "oom" => finding(
            "event.oom",
            Severity::Medium,
            "the container ran out of memory".to_owned(),
        ),
        "die" if !quarantining => {
            let code = attributes.get("exitCode").cloned().unwrap_or_default();
            finding(
                "event.died",
                Severity::Medium,
                format!("the container stopped (exit code {code})"),
            )
        }
        "update" if !quarantining => finding(
            "event.updated",
            Severity::High,
            "the container's resources or restart policy were changed".to_owned(),
        ),
        "commit" => finding(
            "event.commit",
            Severity::Medium,
            "an image was committed from the container".to_owned(),
        ),
        "export" => finding(
            "event.export",
            Severity::High,
            "the container's filesystem was exported".to_owned(),
        ),
        "unpause" if quarantining => finding(
            "event.unpaused_in_quarantine",
            Severity::Critical,
            "the quarantined container was unpaused outside occcd".to_owned(),
        ),
        "start" | "restart" | "unpause" | "rename" => EventMeaning::Recheck,
        "destroy" => EventMeaning::Removed,
        _ => EventMeaning::Ignore,
    }
}

/// Options for an events stream of container and network events, starting
/// after `since_nanos`. Network events name containers by id only, so the
/// stream is not narrowed to the watched containers: the monitor picks.
#[must_use]
pub fn stream_options(since_nanos: Option<i64>) -> EventsOptions {
    let mut filters = HashMap::new();
    filters.insert(
        "type".to_owned(),
        vec!["container".to_owned(), "network".to_owned()],
    );
    EventsOptions {
        since: since_nanos.map(format_nanos),
        until: None,
        filters: Some(filters),
    }
}

/// `seconds.nanoseconds`, the engine's `since` format.
fn format_nanos(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    fn event(action: &str) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("abc".to_owned()),
                attributes: Some([("name".to_owned(), "gw".to_owned())].into()),
            }),
            time_nano: Some(1_700_000_000_123_456_789),
            ..Default::default()
        }
    }

    fn check_of(meaning: EventMeaning) -> Option<(&'static str, Severity)> {
        match meaning {
            EventMeaning::Finding(finding) => {
                assert_eq!(
                    event_check(finding.check_id),
                    Some(finding.check_id),
                    "every event check is listed in EVENT_CHECKS"
                );
                Some((finding.check_id, finding.severity))
            }
            _ => None,
        }
    }

    #[test]
    fn exec_is_critical_and_names_the_command() {
        let meaning = classify(&event("exec_start: sh -c id"), "gw", false, UnixMillis(0));
        let EventMeaning::Finding(finding) = meaning else {
            panic!("{meaning:?}")
        };
        assert_eq!(
            (finding.check_id, finding.severity),
            ("event.exec", Severity::Critical)
        );
        assert!(
            finding
                .summary
                .ends_with("exec: sh (2 arguments not shown)"),
            "{}",
            finding.summary
        );
        assert_eq!(finding.evidence["action"], "exec_start: sh -c id");
        let secret = classify(
            &event("exec_start: psql postgres://u:hunter2@db"),
            "gw",
            false,
            UnixMillis(0),
        );
        let EventMeaning::Finding(finding) = secret else {
            panic!("{secret:?}")
        };
        assert!(!finding.summary.contains("hunter2"), "{}", finding.summary);
    }

    #[test]
    fn each_watched_event_has_its_check() {
        let cases = [
            ("extract-to-dir", Some(("event.copy_in", Severity::High))),
            ("oom", Some(("event.oom", Severity::Medium))),
            ("die", Some(("event.died", Severity::Medium))),
            ("update", Some(("event.updated", Severity::High))),
            ("commit", Some(("event.commit", Severity::Medium))),
            ("export", Some(("event.export", Severity::High))),
            ("archive-path", None),
            ("pause", None),
        ];
        for (action, expected) in cases {
            let meaning = classify(&event(action), "gw", false, UnixMillis(0));
            assert_eq!(check_of(meaning), expected, "{action}");
        }
    }

    #[test]
    fn the_quarantines_own_actions_are_expected_but_an_unpause_is_not() {
        for action in ["update", "die", "pause"] {
            assert_eq!(
                classify(&event(action), "gw", true, UnixMillis(0)),
                EventMeaning::Ignore
            );
        }
        let meaning = classify(&event("unpause"), "gw", true, UnixMillis(0));
        assert_eq!(
            check_of(meaning),
            Some(("event.unpaused_in_quarantine", Severity::Critical))
        );
    }

    #[test]
    fn since_is_seconds_dot_nanoseconds() {
        assert_eq!(
            format_nanos(1_700_000_000_000_000_001),
            "1700000000.000000001"
        );
        let options = stream_options(Some(5));
        assert_eq!(options.since.as_deref(), Some("0.000000005"));
    }
}
