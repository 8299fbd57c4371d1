//! One polling sweep of a container: runtime settings, settings and image
//! against the baseline, processes by the executables they run, drift and
//! new executables anywhere the container can write, and — when due —
//! critical-file and host-file hashes against the baseline.
//!
//! Invariant: a check that cannot run is a `check.failed` finding, never a
//! silent pass; every engine call and host read has a deadline; only a
//! container that cannot be inspected at all fails the sweep (the monitor
//! then reports `Unknown`).

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{
    baseline::{self, Baseline},
    config::ContainerProfile,
    drift_check::{self, DriftMemory, DriftPlan},
    engine::{Engine, EngineError, within},
    finding::{Finding, Severity},
    host_fs::HostFileError,
    identity::ExeCache,
    process_check,
    quarantine::Before,
    runtime_checks,
};
use crate::clock::UnixMillis;

/// What a sweep saw.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// The container's engine state (running, paused, exited …).
    pub state: String,
    /// Its id, networks and execs as this sweep saw them.
    pub known: Before,
    /// Host folders of its writable trees (while it runs), for the
    /// real-time watch.
    pub watch_roots: Vec<std::path::PathBuf>,
    /// How long each check took (`inspect`, `process`, `drift`, `hashes`).
    pub took: Vec<(&'static str, std::time::Duration)>,
}

/// What the monitor keeps between sweeps of one container.
#[derive(Debug, Clone, Default)]
pub struct SweepMemory {
    /// Verdicts on files of its writable trees.
    pub drift: Arc<DriftMemory>,
    /// Hashes of executables its processes ran.
    pub executables: Arc<Mutex<ExeCache>>,
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
    /// What no mount may reach.
    pub guarded: &'a super::mounts::GuardedPaths,
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

/// Runs every check of `plan` once.
pub async fn sweep(
    engine: &Engine,
    plan: SweepPlan<'_>,
    memory: &SweepMemory,
) -> Result<SweepOutcome, EngineError> {
    let profile = plan.profile;
    let name = profile.name.as_str();
    let mut took = Vec::with_capacity(4);
    let started = std::time::Instant::now();
    let inspect = within("inspect", engine.docker().inspect_container(name, None)).await?;
    took.push(("inspect", started.elapsed()));
    let mut findings = runtime_checks::check(profile, &inspect, plan.guarded, plan.now);
    let state = inspect
        .state
        .as_ref()
        .and_then(|state| state.status)
        .map_or_else(|| "unknown".to_owned(), |status| status.to_string());
    if let Some(baseline) = plan.baseline {
        compare_with_baseline(&plan, baseline, &inspect, &mut findings);
    }
    if state == "running" {
        let cache = Arc::clone(&memory.executables);
        let started = std::time::Instant::now();
        match process_check::check(engine, profile, plan.baseline, cache, plan.now).await {
            Ok(found) => findings.extend(found),
            Err(err) => findings.push(failed(&plan, "process", &err)),
        }
        took.push(("process", started.elapsed()));
    }
    let drift = DriftPlan {
        profile,
        inspect: &inspect,
        baseline: plan.baseline,
        hash_limit: plan.max_bytes,
        now: plan.now,
    };
    let started = std::time::Instant::now();
    findings.extend(drift_check::check(engine, drift, Arc::clone(&memory.drift)).await);
    took.push(("drift", started.elapsed()));
    if plan.hashes
        && let Some(baseline) = plan.baseline
    {
        let started = std::time::Instant::now();
        check_hashes(engine, &plan, baseline, &mut findings).await;
        took.push(("hashes", started.elapsed()));
    }
    let known = Before::of(&inspect);
    let watch_roots = if state == "running" {
        super::trees::trees_of(&inspect)
            .iter()
            .filter_map(super::realtime::watch_root)
            .collect()
    } else {
        Vec::new()
    };
    Ok(SweepOutcome {
        findings,
        state,
        known,
        watch_roots,
        took,
    })
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
        // Too large to hash is no pass: the file cannot be vouched for.
        Err(EngineError::Refused(reason)) => findings.push(Finding::new(
            name,
            "files.critical_hash",
            Severity::Critical,
            format!("critical files cannot be verified: {reason}"),
            json!({ "unverifiable": reason }),
            plan.now,
        )),
        Err(err) => findings.push(failed(plan, "critical-file hash", &err)),
    }
    let mut current = Vec::new();
    for (path, result) in baseline::hash_host_files(plan.profile, plan.max_bytes).await {
        match result {
            Ok(Some(file)) => current.push(file),
            Ok(None) => {}
            Err(err @ (HostFileError::NotRegular { .. } | HostFileError::Symlink { .. })) => {
                findings.push(Finding::new(
                    name,
                    "host.file_not_regular",
                    Severity::High,
                    format!("a watched host file was replaced: {err}"),
                    json!({ "path": path, "error": err.to_string() }),
                    plan.now,
                ));
            }
            Err(err @ HostFileError::TooLarge { .. }) => findings.push(Finding::new(
                name,
                "host.file_changed",
                Severity::High,
                format!("a watched host file cannot be verified: {err}"),
                json!({ "path": path, "error": err.to_string() }),
                plan.now,
            )),
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
