//! The processes of a running container, each identified by the executable
//! it runs — not by the name it gives itself.
//!
//! Invariant: with a pinned baseline and the host's `/proc`, a process whose
//! executable was not pinned, or that calls itself by a name its executable
//! was not pinned under, is a critical finding; the name allowlist stays
//! the policy of which pinned programs may run (high); where identity
//! cannot be established the check falls back to names and an info finding
//! says why.

use std::sync::{Arc, Mutex, TryLockError};

use bollard::query_parameters::TopOptions;
use serde_json::json;

use super::{
    baseline::Baseline,
    config::ContainerProfile,
    engine::{CALL_DEADLINE, Engine, EngineError, within},
    finding::{Finding, Severity},
    identity::{self, ExeCache, Verdict},
};
use crate::clock::UnixMillis;

/// One process as `docker top` lists it: host pid and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Host pid.
    pub pid: u32,
    /// Process name (`comm`, at most 15 characters).
    pub comm: String,
}

/// Lists the processes of `container` with their host pids.
pub async fn list(engine: &Engine, container: &str) -> Result<Vec<Listed>, EngineError> {
    let options = TopOptions {
        ps_args: "-o pid,comm".to_owned(),
    };
    let top = within(
        "listing processes",
        engine.docker().top_processes(container, Some(options)),
    )
    .await?;
    let titles = top.titles.unwrap_or_default();
    let pid_column = titles.iter().position(|title| title == "PID").unwrap_or(0);
    let comm_column = titles
        .iter()
        .position(|title| title == "COMMAND" || title == "CMD")
        .unwrap_or(titles.len().saturating_sub(1));
    Ok(top
        .processes
        .unwrap_or_default()
        .iter()
        .filter_map(|row| {
            Some(Listed {
                pid: row.get(pid_column)?.parse().ok()?,
                comm: row.get(comm_column)?.clone(),
            })
        })
        .collect())
}

/// What identifying one process gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identified {
    Judged(Verdict, String),
    Unverified(String),
}

/// Executable bytes one pass hashes at most (executables seen before cost
/// nothing): a container cannot make identification take without bound.
const MAX_HASHED_PER_PASS: u64 = 2 * 1024 * 1024 * 1024;

/// Every process judged by name only, for `why`.
fn unidentified(processes: &[Listed], why: &str) -> Vec<(Listed, Identified)> {
    processes
        .iter()
        .map(|process| (process.clone(), Identified::Unverified(why.to_owned())))
        .collect()
}

/// Identifies every process (blocking: reads `/proc`).
fn identify(
    processes: &[Listed],
    baseline: Option<&Baseline>,
    cache: &Mutex<ExeCache>,
) -> Vec<(Listed, Identified)> {
    let mut cache = match cache.try_lock() {
        Ok(cache) => cache,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            return unidentified(processes, "the previous identification is still running");
        }
    };
    cache.begin_pass(MAX_HASHED_PER_PASS);
    processes
        .iter()
        .filter_map(|process| {
            let identified = match baseline.map(|b| &b.trusted).filter(|t| !t.is_empty()) {
                None => Identified::Unverified(
                    "no pinned executables (pin a baseline on an overlay2 engine)".to_owned(),
                ),
                Some(trusted) => match identity::running_executable(process.pid, &mut cache) {
                    Ok(Some(exe)) => Identified::Judged(
                        identity::judge(&process.comm, &exe, trusted),
                        exe.sha256,
                    ),
                    // Ended, or a zombie: it runs nothing.
                    Ok(None) => return None,
                    Err(err) => Identified::Unverified(format!("by name only: {err}")),
                },
            };
            Some((process.clone(), identified))
        })
        .collect()
}

/// The findings about `container`'s processes.
pub async fn check(
    engine: &Engine,
    profile: &ContainerProfile,
    baseline: Option<&Baseline>,
    cache: Arc<Mutex<ExeCache>>,
    now: UnixMillis,
) -> Result<Vec<Finding>, EngineError> {
    let processes = list(engine, &profile.name).await?;
    let pinned = baseline.is_some_and(|baseline| !baseline.trusted.is_empty());
    let owned_baseline = baseline.cloned();
    let listed = processes.clone();
    let identifying =
        tokio::task::spawn_blocking(move || identify(&processes, owned_baseline.as_ref(), &cache));
    // Hashing large executables takes seconds; a read that hangs must not
    // hold the sweep: the processes are then judged by name, and say why.
    let identified = match tokio::time::timeout(CALL_DEADLINE, identifying).await {
        Ok(Ok(identified)) => identified,
        Ok(Err(err)) => unidentified(&listed, &format!("identification failed: {err}")),
        Err(_) => unidentified(&listed, "identification took too long"),
    };
    Ok(judge(profile, &identified, pinned, now))
}

/// The findings about `identified`; `pinned` when the baseline holds the
/// executables the container may run.
fn judge(
    profile: &ContainerProfile,
    identified: &[(Listed, Identified)],
    pinned: bool,
    now: UnixMillis,
) -> Vec<Finding> {
    let name = profile.name.as_str();
    let mut findings = Vec::new();
    let foreign: Vec<_> = identified
        .iter()
        .filter_map(|(p, id)| match id {
            Identified::Judged(Verdict::Foreign, sha) => {
                Some(json!({ "pid": p.pid, "name": p.comm, "sha256": sha }))
            }
            _ => None,
        })
        .collect();
    if !foreign.is_empty() {
        findings.push(Finding::new(
            name,
            "process.foreign_executable",
            Severity::Critical,
            format!(
                "{} process(es) run an executable that is not in the pinned image",
                foreign.len()
            ),
            json!({ "processes": foreign }),
            now,
        ));
    }
    let masquerading: Vec<_> = identified
        .iter()
        .filter_map(|(p, id)| match id {
            Identified::Judged(Verdict::Masquerade { pinned_as }, sha) => Some(json!({
                "pid": p.pid, "name": p.comm, "sha256": sha, "pinned_as": pinned_as,
            })),
            _ => None,
        })
        .collect();
    if !masquerading.is_empty() {
        findings.push(Finding::new(
            name,
            "process.masquerade",
            Severity::Critical,
            format!(
                "{} process(es) call themselves by a name their executable was not pinned under",
                masquerading.len()
            ),
            json!({ "processes": masquerading }),
            now,
        ));
    }
    let unverified: Vec<String> = identified
        .iter()
        .filter_map(|(p, id)| match id {
            Identified::Unverified(why) => Some(format!("{} ({}): {why}", p.comm, p.pid)),
            Identified::Judged(..) => None,
        })
        .collect();
    let identity_note = if unverified.is_empty() {
        json!("executable SHA-256 against the pinned image")
    } else {
        json!({ "by_name_only": unverified })
    };
    let mut unexpected: Vec<&str> = identified
        .iter()
        .map(|(p, _)| p.comm.as_str())
        .filter(|comm| {
            !profile
                .process_allowlist
                .iter()
                .any(|allowed| allowed == comm)
        })
        .collect();
    unexpected.sort_unstable();
    unexpected.dedup();
    if !unexpected.is_empty() {
        findings.push(Finding::new(
            name,
            "process.unexpected",
            Severity::High,
            format!("processes outside the allowlist: {}", unexpected.join(", ")),
            json!({
                "unexpected": unexpected,
                "allowlist": profile.process_allowlist,
                "identity": identity_note,
            }),
            now,
        ));
    }
    if !unverified.is_empty() {
        // With executables pinned, a process that cannot be identified is
        // one the container may be hiding: never healthy. Without, it is
        // the best this host allows, said once.
        findings.push(Finding::new(
            name,
            "process.identity_unverified",
            if pinned {
                Severity::High
            } else {
                Severity::Info
            },
            "processes were judged by name only".to_owned(),
            json!({ "processes": unverified }),
            now,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(pid: u32, comm: &str) -> Listed {
        Listed {
            pid,
            comm: comm.to_owned(),
        }
    }

    #[test]
    fn foreign_and_masquerading_processes_are_critical_whatever_their_names() {
        let profile = ContainerProfile {
            process_allowlist: vec!["node".to_owned(), "sleep".to_owned()],
            ..ContainerProfile::default()
        };
        let identified = [
            (
                listed(1, "sleep"),
                Identified::Judged(Verdict::Trusted, "a".into()),
            ),
            (
                listed(2, "node"),
                Identified::Judged(Verdict::Foreign, "b".into()),
            ),
            (
                listed(3, "node"),
                Identified::Judged(
                    Verdict::Masquerade {
                        pinned_as: vec!["busybox".to_owned()],
                    },
                    "c".into(),
                ),
            ),
        ];
        let findings = judge(&profile, &identified, true, UnixMillis(0));
        let ids: Vec<(&str, Severity)> =
            findings.iter().map(|f| (f.check_id, f.severity)).collect();
        assert_eq!(
            ids,
            [
                ("process.foreign_executable", Severity::Critical),
                ("process.masquerade", Severity::Critical)
            ],
            "allowlisted names are no cover"
        );
    }

    #[test]
    fn unidentified_processes_fall_back_to_names_and_are_never_healthy_once_pinned() {
        let profile = ContainerProfile {
            process_allowlist: vec!["node".to_owned()],
            ..ContainerProfile::default()
        };
        let identified = [(
            listed(7, "nc"),
            Identified::Unverified("by name only: EACCES".into()),
        )];
        let findings = judge(&profile, &identified, false, UnixMillis(0));
        assert_eq!(findings[0].check_id, "process.unexpected");
        assert_eq!(findings[0].severity, Severity::High);
        assert!(findings[0].evidence.to_string().contains("by_name_only"));
        assert_eq!(findings[1].check_id, "process.identity_unverified");
        assert_eq!(findings[1].severity, Severity::Info);
        // With executables pinned, an allowlisted name whose executable
        // cannot be read (a process hiding it) is high, not a note.
        let hiding = [(
            listed(8, "node"),
            Identified::Unverified("by name only: ENOENT".into()),
        )];
        let findings = judge(&profile, &hiding, true, UnixMillis(0));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check_id, "process.identity_unverified");
        assert_eq!(findings[0].severity, Severity::High);
    }
}
