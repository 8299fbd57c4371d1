//! One polling sweep of a container: runtime settings, settings and image
//! against the baseline, processes against the allowlist, filesystem drift
//! under protected paths (new executables), and — when due — critical-file
//! and host-file hashes against the baseline.
//!
//! Invariant: a check that cannot run is a `check.failed` finding, never a
//! silent pass; only a container that cannot be inspected at all fails the
//! sweep (the monitor then reports `Unknown`).

use bollard::{models::ChangeType, query_parameters::TopOptions};
use serde_json::json;

use super::{
    archive,
    baseline::{self, Baseline},
    config::ContainerProfile,
    engine::{Engine, EngineError},
    finding::{Finding, Severity},
    runtime_checks,
};
use crate::clock::UnixMillis;

/// Added files checked for execute bits per sweep.
const MAX_EXECUTABLE_PROBES: usize = 32;
/// Paths listed in a drift finding's evidence.
const MAX_LISTED_PATHS: usize = 50;

/// What a sweep saw.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// The container's engine state (running, paused, exited …).
    pub state: String,
}

/// What a sweep needs besides the engine.
#[derive(Debug, Clone, Copy)]
pub struct SweepPlan<'a> {
    /// The container.
    pub profile: &'a ContainerProfile,
    /// Its baseline, if pinned.
    pub baseline: Option<&'a Baseline>,
    /// Whether to compare file hashes this time.
    pub hashes: bool,
    /// Byte bound for hashing.
    pub max_bytes: u64,
    /// Now.
    pub now: UnixMillis,
}

fn failed(plan: &SweepPlan<'_>, check: &str, err: &dyn std::fmt::Display) -> Finding {
    Finding::new(
        &plan.profile.name,
        "check.failed",
        Severity::Medium,
        format!("the {check} check could not run: {err}"),
        json!({ "check": check, "error": err.to_string() }),
        plan.now,
    )
}

pub(super) fn under(path: &str, roots: &[String]) -> bool {
    roots.iter().any(|root| {
        let root = root.trim_end_matches('/');
        root.is_empty() || path == root || path.starts_with(&format!("{root}/"))
    })
}

/// Runs every check of `plan` once.
pub async fn sweep(engine: &Engine, plan: SweepPlan<'_>) -> Result<SweepOutcome, EngineError> {
    let profile = plan.profile;
    let name = profile.name.as_str();
    let inspect = engine.docker().inspect_container(name, None).await?;
    let mut findings = runtime_checks::check(profile, &inspect, plan.now);
    let state = inspect
        .state
        .as_ref()
        .and_then(|state| state.status)
        .map_or_else(|| "unknown".to_owned(), |status| status.to_string());
    if let Some(baseline) = plan.baseline {
        compare_with_baseline(&plan, baseline, &inspect, &mut findings);
    }
    if state == "running" {
        match check_processes(engine, &plan).await {
            Ok(found) => findings.extend(found),
            Err(err) => findings.push(failed(&plan, "process", &err)),
        }
    }
    match check_drift(engine, &plan).await {
        Ok(found) => findings.extend(found),
        Err(err) => findings.push(failed(&plan, "filesystem drift", &err)),
    }
    if plan.hashes
        && let Some(baseline) = plan.baseline
    {
        check_hashes(engine, &plan, baseline, &mut findings).await;
    }
    Ok(SweepOutcome { findings, state })
}

fn compare_with_baseline(
    plan: &SweepPlan<'_>,
    baseline: &Baseline,
    inspect: &bollard::models::ContainerInspectResponse,
    findings: &mut Vec<Finding>,
) {
    let image = inspect.image.clone().unwrap_or_default();
    if image != baseline.image_id {
        findings.push(Finding::new(
            &plan.profile.name,
            "image.changed",
            Severity::Critical,
            "the container runs another image than the pinned one",
            json!({ "pinned": baseline.image_id, "running": image }),
            plan.now,
        ));
    }
    let settings = baseline::settings_of(inspect);
    if settings != baseline.settings {
        findings.push(Finding::new(
            &plan.profile.name,
            "settings.changed",
            Severity::High,
            "security-relevant settings differ from the baseline",
            json!({ "pinned": baseline.settings, "current": settings }),
            plan.now,
        ));
    }
}

async fn check_processes(
    engine: &Engine,
    plan: &SweepPlan<'_>,
) -> Result<Vec<Finding>, EngineError> {
    let options = TopOptions {
        ps_args: "-o pid,comm".to_owned(),
    };
    let top = engine
        .docker()
        .top_processes(&plan.profile.name, Some(options))
        .await?;
    let titles = top.titles.unwrap_or_default();
    let command_column = titles
        .iter()
        .position(|title| title == "COMMAND" || title == "CMD")
        .unwrap_or(titles.len().saturating_sub(1));
    let mut unexpected: Vec<String> = top
        .processes
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.get(command_column).cloned())
        .filter(|command| {
            !plan
                .profile
                .process_allowlist
                .iter()
                .any(|allowed| allowed == command)
        })
        .collect();
    unexpected.sort();
    unexpected.dedup();
    if unexpected.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Finding::new(
        &plan.profile.name,
        "process.unexpected",
        Severity::High,
        format!("processes outside the allowlist: {}", unexpected.join(", ")),
        json!({ "unexpected": unexpected, "allowlist": plan.profile.process_allowlist }),
        plan.now,
    )])
}

async fn check_drift(engine: &Engine, plan: &SweepPlan<'_>) -> Result<Vec<Finding>, EngineError> {
    let docker = engine.docker();
    let changes = docker
        .container_changes(&plan.profile.name)
        .await?
        .unwrap_or_default();
    let protected: Vec<(String, &str)> = changes
        .into_iter()
        .filter(|change| under(&change.path, &plan.profile.protected_paths))
        .map(|change| {
            let kind = match change.kind {
                ChangeType::_0 => "modified",
                ChangeType::_1 => "added",
                ChangeType::_2 => "deleted",
            };
            (change.path, kind)
        })
        .collect();
    let mut findings = Vec::new();
    if protected.is_empty() {
        return Ok(findings);
    }
    let listed: Vec<String> = protected
        .iter()
        .take(MAX_LISTED_PATHS)
        .map(|(path, kind)| format!("{kind} {path}"))
        .collect();
    findings.push(Finding::new(
        &plan.profile.name,
        "files.drift",
        Severity::High,
        format!(
            "{} change(s) under protected paths, e.g. {}",
            protected.len(),
            listed[0]
        ),
        json!({ "changes": listed, "total": protected.len() }),
        plan.now,
    ));
    let mut executables = Vec::new();
    for (path, _) in protected
        .iter()
        .filter(|(_, kind)| *kind != "deleted")
        .take(MAX_EXECUTABLE_PROBES)
    {
        // A changed folder lists its changed files separately; look at files only.
        match archive::hash_path(docker, &plan.profile.name, path, plan.max_bytes).await {
            Ok(files) => executables.extend(
                files
                    .into_iter()
                    .filter(|file| file.executable && file.path == *path),
            ),
            Err(EngineError::NotFound(_)) => {}
            Err(err) => findings.push(failed(plan, "new executable", &err)),
        }
    }
    if !executables.is_empty() {
        let paths: Vec<&str> = executables.iter().map(|file| file.path.as_str()).collect();
        findings.push(Finding::new(
            &plan.profile.name,
            "files.new_executable",
            Severity::Critical,
            format!("new or changed executables under protected paths: {}", paths.join(", ")),
            json!({ "executables": executables.iter().map(|f| json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>() }),
            plan.now,
        ));
    }
    Ok(findings)
}

async fn check_hashes(
    engine: &Engine,
    plan: &SweepPlan<'_>,
    baseline: &Baseline,
    findings: &mut Vec<Finding>,
) {
    let name = &plan.profile.name;
    match baseline::hash_image_files(engine, plan.profile, plan.max_bytes).await {
        Ok(current) => {
            let changed = baseline::differences(&baseline.image_files, &current);
            if !changed.is_empty() {
                findings.push(Finding::new(
                    name,
                    "files.critical_hash",
                    Severity::Critical,
                    format!(
                        "critical files differ from the baseline: {}",
                        describe(&changed)
                    ),
                    json!({ "changes": changed }),
                    plan.now,
                ));
            }
        }
        Err(EngineError::NotFound(what)) => findings.push(Finding::new(
            name,
            "files.critical_hash",
            Severity::Critical,
            format!("a critical path is gone: {what}"),
            json!({ "missing": what }),
            plan.now,
        )),
        Err(err) => findings.push(failed(plan, "critical-file hash", &err)),
    }
    let mut current = Vec::new();
    for (path, result) in baseline::hash_host_files(plan.profile, plan.max_bytes).await {
        match result {
            Ok(Some(file)) => current.push(file),
            Ok(None) => {}
            Err(err) => findings.push(failed(plan, &format!("host file {path}"), &err)),
        }
    }
    let changed = baseline::differences(&baseline.host_files, &current);
    if !changed.is_empty() {
        findings.push(Finding::new(
            name,
            "host.file_changed",
            Severity::High,
            format!(
                "watched host files differ from the baseline: {}",
                describe(&changed)
            ),
            json!({ "changes": changed }),
            plan.now,
        ));
    }
}

fn describe(changes: &[(String, &str)]) -> String {
    changes
        .iter()
        .map(|(path, what)| format!("{path} ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_means_the_path_or_below_it() {
        let roots = ["/app".to_owned(), "/etc/".to_owned()];
        assert!(under("/app", &roots));
        assert!(under("/app/x.js", &roots));
        assert!(under("/etc/passwd", &roots));
        assert!(!under("/application", &roots));
        assert!(!under("/tmp/x", &roots));
    }
}
