//! `occcctl integrity status | watch | acknowledge`: the containers'
//! integrity for ops.

use occc_client::{ClientError, OcccClient, proto as pb};
use tokio_stream::StreamExt;

use crate::output::print_json;

fn health_name(health: pb::ContainerHealth) -> &'static str {
    match health {
        pb::ContainerHealth::Healthy => "healthy",
        pb::ContainerHealth::Degraded => "DEGRADED",
        pb::ContainerHealth::Compromised => "COMPROMISED",
        pb::ContainerHealth::Unknown | pb::ContainerHealth::Unspecified => "UNKNOWN",
    }
}

fn severity_name(severity: pb::Severity) -> &'static str {
    match severity {
        pb::Severity::Critical => "critical",
        pb::Severity::High => "high",
        pb::Severity::Medium => "medium",
        pb::Severity::Low => "low",
        pb::Severity::Info | pb::Severity::Unspecified => "info",
    }
}

fn print_status(status: &pb::ContainerStatus) {
    println!(
        "{}: {} — {}",
        status.container,
        health_name(status.health()),
        status.reason
    );
    if let Some(quarantine) = &status.quarantine {
        println!(
            "  QUARANTINED since {} (snapshot {}); isolation {}",
            quarantine.since_unix_ms, quarantine.snapshot_id, quarantine.isolation
        );
    }
    if !status.baseline_pinned {
        println!("  no baseline pinned (occc.v1.Integrity/PinBaseline)");
    }
    for finding in &status.findings {
        let open = if finding.needs_acknowledgement {
            format!(" (open until acknowledged; seen {}×)", finding.occurrences)
        } else {
            String::new()
        };
        println!(
            "  [{}] {}: {}{open}",
            severity_name(finding.severity()),
            finding.check_id,
            finding.summary
        );
    }
}

/// Prints every container's status; true when all are healthy.
pub async fn status(client: &OcccClient, as_json: bool) -> Result<bool, ClientError> {
    let status = client
        .integrity()
        .get_integrity_status(pb::GetIntegrityStatusRequest {})
        .await?
        .into_inner();
    if as_json {
        print_json(&status)?;
    } else {
        if status.locked {
            println!("sensitive operations are LOCKED by a quarantine");
        }
        status.containers.iter().for_each(print_status);
    }
    Ok(status
        .containers
        .iter()
        .all(|c| c.health() == pb::ContainerHealth::Healthy))
}

/// Prints status changes and findings as they happen, until interrupted.
pub async fn watch(client: &OcccClient, as_json: bool) -> Result<bool, ClientError> {
    let mut events = client
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await?
        .into_inner();
    while let Some(event) = events.next().await {
        let event = event?;
        if as_json {
            print_json(&event)?;
            continue;
        }
        match event.kind {
            Some(pb::integrity_event::Kind::Status(status)) => print_status(&status),
            Some(pb::integrity_event::Kind::Finding(finding)) => println!(
                "{} [{}] {}: {}",
                finding.container,
                severity_name(finding.severity()),
                finding.check_id,
                finding.summary
            ),
            None => {}
        }
    }
    Ok(true)
}

/// Closes open event findings `checks` of `container` with `note`.
pub async fn acknowledge(
    client: &OcccClient,
    container: String,
    checks: Vec<String>,
    note: String,
) -> Result<bool, ClientError> {
    let closed = checks.join(", ");
    client
        .integrity()
        .acknowledge_findings(pb::AcknowledgeFindingsRequest {
            container: container.clone(),
            check_ids: checks,
            note,
        })
        .await?;
    println!("acknowledged {closed} on {container}");
    Ok(true)
}
