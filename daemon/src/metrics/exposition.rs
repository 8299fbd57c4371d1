//! The Prometheus text exposition format (version 0.0.4) of what
//! [`super::Metrics`] counted and what was [`super::Sampled`].
//!
//! Invariant: every family has one `# HELP` and one `# TYPE` line and its
//! samples follow it; label values are escaped (`\`, `"`, newline), so no
//! value — a container's configured name included — can break a line.

use std::fmt::Write as _;

use super::{Counted, Histogram, Sampled};

/// `value` escaped for a label.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escaped(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, pairs: &[(&str, &str)], histogram: &Histogram) {
    for (le, count) in histogram.buckets() {
        let mut with_le = pairs.to_vec();
        with_le.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {count}", labels(&with_le));
    }
    let _ = writeln!(out, "{name}_sum{} {}", labels(pairs), histogram.sum());
    let _ = writeln!(out, "{name}_count{} {}", labels(pairs), histogram.count());
}

/// The whole exposition.
#[must_use]
pub fn render(counted: &Counted, sampled: &Sampled) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "occcd_up",
        "gauge",
        "1 while occcd answers scrapes.",
    );
    out.push_str("occcd_up 1\n");

    family(
        &mut out,
        "occcd_service_serving",
        "gauge",
        "1 while grpc.health.v1 says SERVING for the service (\"\" is the daemon), else 0.",
    );
    for (service, serving) in &sampled.services {
        let _ = writeln!(
            out,
            "occcd_service_serving{} {}",
            labels(&[("service", service)]),
            u8::from(*serving)
        );
    }

    family(
        &mut out,
        "occcd_rpc_duration_seconds",
        "histogram",
        "Time from a call's arrival to its response, by method and gRPC code.",
    );
    for ((method, code), observed) in &counted.calls {
        histogram(
            &mut out,
            "occcd_rpc_duration_seconds",
            &[("method", method), ("code", code)],
            observed,
        );
    }

    family(
        &mut out,
        "occcd_audit_entries_total",
        "counter",
        "Audit entries committed, by kind (login_succeeded, login_failed, account_locked, quarantine_started, ...).",
    );
    for (kind, count) in &counted.audit_entries {
        let _ = writeln!(
            out,
            "occcd_audit_entries_total{} {count}",
            labels(&[("kind", kind)])
        );
    }
    family(
        &mut out,
        "occcd_audit_lost_total",
        "counter",
        "Audit entries that could not be committed.",
    );
    let _ = writeln!(out, "occcd_audit_lost_total {}", counted.audit_lost);
    family(
        &mut out,
        "occcd_audit_queue_entries",
        "gauge",
        "Audit entries queued and not yet committed.",
    );
    let _ = writeln!(out, "occcd_audit_queue_entries {}", sampled.audit_queue);
    family(
        &mut out,
        "occcd_audit_commit_seconds",
        "histogram",
        "Time one batch of audit entries took to commit.",
    );
    histogram(
        &mut out,
        "occcd_audit_commit_seconds",
        &[],
        &counted.audit_commits,
    );

    family(
        &mut out,
        "occcd_sessions",
        "gauge",
        "Live sessions by role.",
    );
    for (role, count) in &sampled.sessions_by_role {
        let _ = writeln!(out, "occcd_sessions{} {count}", labels(&[("role", role)]));
    }

    family(
        &mut out,
        "occcd_container_state",
        "gauge",
        "1 for each watched container's current state (healthy, degraded, compromised, unknown).",
    );
    for container in &sampled.containers {
        let _ = writeln!(
            out,
            "occcd_container_state{} 1",
            labels(&[("container", &container.name), ("state", container.state)])
        );
    }
    family(
        &mut out,
        "occcd_container_quarantined",
        "gauge",
        "1 while the watched container is quarantined, else 0.",
    );
    for container in &sampled.containers {
        let _ = writeln!(
            out,
            "occcd_container_quarantined{} {}",
            labels(&[("container", &container.name)]),
            u8::from(container.quarantined)
        );
    }
    family(
        &mut out,
        "occcd_findings",
        "gauge",
        "Open findings of each watched container, by severity.",
    );
    for container in &sampled.containers {
        for (severity, count) in &container.findings {
            let _ = writeln!(
                out,
                "occcd_findings{} {count}",
                labels(&[("container", &container.name), ("severity", severity)])
            );
        }
    }
    steps(&mut out, counted);
    event_outputs(&mut out, counted, sampled.audit_head);
    out
}

/// Integrity check durations and quarantine isolation latency.
fn steps(out: &mut String, counted: &Counted) {
    for (name, help, label, observed) in [
        (
            "occcd_check_duration_seconds",
            "Time one integrity check of one container took, by check.",
            "check",
            &counted.checks,
        ),
        (
            "occcd_quarantine_isolation_seconds",
            "Time from the event that triggered a quarantine (an exec, a change) to each isolation step: links_cut, paused, verified.",
            "step",
            &counted.isolation,
        ),
    ] {
        family(out, name, "histogram", help);
        for (value, histogram_of) in observed {
            histogram(out, name, &[(label, value)], histogram_of);
        }
    }
}

/// What each event output delivered, failed and has still to deliver.
fn event_outputs(out: &mut String, counted: &Counted, audit_head: i64) {
    type Read = fn(&super::OutputCounts, i64) -> u64;
    let families: [(&str, &str, &str, Read); 3] = [
        (
            "occcd_events_delivered_total",
            "counter",
            "Records the output's receiver acknowledged (journald, syslog, webhook).",
            |counts, _| counts.delivered,
        ),
        (
            "occcd_events_failed_deliveries_total",
            "counter",
            "Deliveries that failed and were retried.",
            |counts, _| counts.failed,
        ),
        (
            "occcd_events_behind_entries",
            "gauge",
            "Committed audit entries the output has not delivered yet.",
            |counts, head| u64::try_from(head - counts.delivered_through).unwrap_or(0),
        ),
    ];
    for (name, kind, help, read) in families {
        family(out, name, kind, help);
        for (output, counts) in &counted.events {
            let _ = writeln!(
                out,
                "{name}{} {}",
                labels(&[("output", output)]),
                read(counts, audit_head)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Metrics, SampledContainer};

    #[test]
    fn every_family_is_announced_and_label_values_cannot_break_a_line() {
        let metrics = Metrics::default();
        metrics.call("/occc.v1.Auth/Login", 16, Duration::from_millis(3));
        metrics.call("/occc.v1.Auth/Login", 0, Duration::from_millis(30));
        metrics.audit_committed(["login_failed"; 2]);
        metrics.audit_commit(Duration::from_micros(300));
        metrics.check("process", Duration::from_millis(20));
        metrics.isolation_step("paused", Duration::from_millis(40));
        metrics.event_output("syslog", |counts| counts.delivered += 3);
        let sampled = Sampled {
            sessions_by_role: vec![("admin", 1)],
            containers: vec![SampledContainer {
                name: "gate\"way\nx 1".to_owned(),
                state: "healthy",
                quarantined: false,
                findings: vec![("high", 2)],
            }],
            services: vec![(String::new(), true)],
            audit_queue: 0,
            audit_head: 0,
        };
        let text = render(&metrics.snapshot(), &sampled);
        assert!(text.contains(
            "occcd_rpc_duration_seconds_bucket{method=\"/occc.v1.Auth/Login\",code=\"UNAUTHENTICATED\",le=\"0.005\"} 1"
        ), "{text}");
        assert!(text.contains(
            "occcd_rpc_duration_seconds_count{method=\"/occc.v1.Auth/Login\",code=\"OK\"} 1"
        ));
        assert!(text.contains("occcd_audit_entries_total{kind=\"login_failed\"} 2"));
        assert!(text.contains("occcd_check_duration_seconds_count{check=\"process\"} 1"));
        assert!(
            text.contains(
                "occcd_quarantine_isolation_seconds_bucket{step=\"paused\",le=\"0.05\"} 1"
            )
        );
        assert!(text.contains("occcd_events_delivered_total{output=\"syslog\"} 3"));
        assert!(text.contains("occcd_events_behind_entries{output=\"syslog\"} 0"));
        assert!(
            text.contains(
                "occcd_container_state{container=\"gate\\\"way\\nx 1\",state=\"healthy\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("occcd_findings{container=\"gate\\\"way\\nx 1\",severity=\"high\"} 2")
        );
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} "))
                    || text.contains(&format!("# TYPE {name} ")),
                "{line} has no TYPE"
            );
        }
    }
}
