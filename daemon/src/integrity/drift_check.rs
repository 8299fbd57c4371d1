//! Drift: what changed in a container since its image, and above all any
//! executable that appeared or changed anywhere it can write.
//!
//! Invariant: every file of every writable tree is examined, without a
//! count limit — read from the host (overlay2's upper folder, tmpfs mounts
//! through `/proc/<pid>/root`, writable bind mounts) where possible, through
//! the engine API otherwise, and the finding says which; an executable not
//! pinned at that path with that hash is critical, one too large to hash
//! included; changes under protected paths are high; a tree that cannot be
//! examined is a `check.failed` finding, never a silent pass.

use std::sync::{Arc, Mutex};

use bollard::models::{ChangeType, ContainerInspectResponse};
use serde_json::json;

use super::{
    archive,
    baseline::Baseline,
    config::{ContainerProfile, under},
    engine::{Engine, EngineError, within},
    finding::{Finding, Severity},
    trees::{self, Tree},
    writable::{self, ExamCache, FoundExecutable, Scan},
};
use crate::clock::UnixMillis;

/// What the monitor keeps between drift checks of one container.
#[derive(Debug, Default)]
pub struct DriftMemory {
    cache: Mutex<ExamCache>,
}

/// Everything a drift check needs.
#[derive(Debug, Clone, Copy)]
pub struct DriftPlan<'a> {
    /// The container.
    pub profile: &'a ContainerProfile,
    /// Its inspect document (for its writable trees).
    pub inspect: &'a ContainerInspectResponse,
    /// Its baseline, if pinned.
    pub baseline: Option<&'a Baseline>,
    /// Files larger than this are not hashed.
    pub hash_limit: u64,
    /// Now.
    pub now: UnixMillis,
}

fn failed(plan: &DriftPlan<'_>, what: &str, err: &dyn std::fmt::Display) -> Finding {
    Finding::new(
        &plan.profile.name,
        "check.failed",
        Severity::Medium,
        format!("the {what} check could not run: {err}"),
        json!({ "check": what, "error": err.to_string() }),
        plan.now,
    )
}

/// Scans the trees readable from the host, off the runtime; a scan still
/// running from an earlier sweep is reported, not waited for.
async fn scan_on_host(
    trees: Vec<Tree>,
    memory: Arc<DriftMemory>,
    hash_limit: u64,
    exempt: Vec<String>,
    protected: Vec<String>,
) -> Result<Scan, String> {
    tokio::task::spawn_blocking(move || {
        let Ok(mut cache) = memory.cache.try_lock() else {
            return Err("the previous scan of this container is still running".to_owned());
        };
        Ok(writable::scan(
            &trees, &mut cache, hash_limit, &exempt, &protected,
        ))
    })
    .await
    .map_err(|err| err.to_string())?
}

/// Changed files and executables through the engine API (one archive read
/// per changed file): for engines whose writable layer is not readable here.
async fn scan_through_api(engine: &Engine, plan: &DriftPlan<'_>) -> Result<Scan, EngineError> {
    let docker = engine.docker();
    let name = plan.profile.name.as_str();
    let changes = within("listing changes", docker.container_changes(name))
        .await?
        .unwrap_or_default();
    let mut scan = Scan::default();
    for change in &changes {
        let deleted = change.kind == ChangeType::_2;
        scan.layer_change(&change.path, deleted, &plan.profile.protected_paths);
        if deleted || under(&change.path, &plan.profile.drift_exempt_paths) {
            continue;
        }
        match archive::hash_path(docker, name, &change.path, plan.hash_limit).await {
            Ok(files) => scan.executables.extend(
                files
                    .into_iter()
                    .filter(|file| file.executable && file.path == change.path)
                    .map(|file| FoundExecutable {
                        path: file.path,
                        size: file.size,
                        by: "execute bit",
                        sha256: Some(file.sha256),
                        note: None,
                    }),
            ),
            Err(EngineError::NotFound(_)) => {}
            Err(EngineError::Refused(reason)) => scan.executables.push(FoundExecutable {
                path: change.path.clone(),
                size: 0,
                by: "not examined",
                sha256: None,
                note: Some(reason),
            }),
            Err(err) => scan.unreadable.push((change.path.clone(), err.to_string())),
        }
        scan.entries += 1;
    }
    scan.trees
        .push(format!("engine API ({} changes)", changes.len()));
    Ok(scan)
}

/// The drift findings of `plan`'s container.
pub async fn check(engine: &Engine, plan: DriftPlan<'_>, memory: Arc<DriftMemory>) -> Vec<Finding> {
    let trees = trees::trees_of(plan.inspect);
    let has_layer = trees.iter().any(|tree| matches!(tree, Tree::Layer { .. }));
    let exempt = plan.profile.drift_exempt_paths.clone();
    let mut findings = Vec::new();
    let mut scan = match scan_on_host(
        trees,
        memory,
        plan.hash_limit,
        exempt,
        plan.profile.protected_paths.clone(),
    )
    .await
    {
        Ok(scan) => scan,
        Err(err) => {
            findings.push(failed(&plan, "filesystem drift", &err));
            return findings;
        }
    };
    let method = if has_layer {
        "writable layer read on the host (overlay2)".to_owned()
    } else {
        match scan_through_api(engine, &plan).await {
            Ok(through_api) => {
                scan.protected_changes = through_api.protected_changes;
                scan.protected_total = through_api.protected_total;
                scan.executables.extend(through_api.executables);
                scan.unreadable.extend(through_api.unreadable);
                scan.entries += through_api.entries;
                "engine API (the writable layer is not readable on this host)".to_owned()
            }
            Err(err) => {
                findings.push(failed(&plan, "filesystem drift", &err));
                return findings;
            }
        }
    };
    for (tree, why) in &scan.unreadable {
        findings.push(failed(&plan, &format!("writable tree {tree}"), why));
    }
    if scan.unexamined_total > 0 {
        // Unseen is never clean: a folder nested too deep or a tmpfs moved
        // away are ways to hide (critical); anything else refused is high.
        let severity = if scan.hiding {
            Severity::Critical
        } else {
            Severity::High
        };
        findings.push(Finding::new(
            &plan.profile.name,
            "files.unexamined",
            severity,
            format!(
                "{} file(s) or folder(s) the container can write could not be examined, e.g. {}",
                scan.unexamined_total,
                scan.unexamined.first().map_or("", String::as_str)
            ),
            json!({
                "unexamined": scan.unexamined,
                "total": scan.unexamined_total,
                "method": method,
            }),
            plan.now,
        ));
    }
    if let Some(first) = scan.protected_changes.first() {
        findings.push(Finding::new(
            &plan.profile.name,
            "files.drift",
            Severity::High,
            format!(
                "{} change(s) under protected paths, e.g. {first}",
                scan.protected_total
            ),
            json!({
                "changes": scan.protected_changes,
                "total": scan.protected_total,
                "method": method,
            }),
            plan.now,
        ));
    }
    let pinned = plan.baseline.map(|baseline| &baseline.trusted.writable);
    let new: Vec<&FoundExecutable> = scan
        .executables
        .iter()
        .filter(|found| {
            let known = pinned.and_then(|pinned| pinned.get(&found.path));
            found.sha256.is_none() || known != found.sha256.as_ref()
        })
        .collect();
    if !new.is_empty() {
        let paths: Vec<&str> = new
            .iter()
            .take(5)
            .map(|found| found.path.as_str())
            .collect();
        findings.push(Finding::new(
            &plan.profile.name,
            "files.new_executable",
            Severity::Critical,
            format!(
                "{} new or changed executable(s) the container can run, e.g. {}",
                new.len(),
                paths.join(", ")
            ),
            json!({
                "executables": new.iter().take(writable::LISTED).collect::<Vec<_>>(),
                "total": new.len(),
                "examined": scan.entries,
                "trees": scan.trees,
                "method": method,
            }),
            plan.now,
        ));
    }
    findings
}
