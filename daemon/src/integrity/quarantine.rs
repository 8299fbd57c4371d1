//! Isolating a compromised container, and the lock that holds sensitive
//! operations while any container is quarantined.
//!
//! Invariant: isolation cuts the container's links from the host and has
//! the engine pause it (once execs being started have their process) at
//! once, then has the engine disconnect every network and set the restart
//! policy to "no"; it never stops, removes or
//! changes the container's filesystem, so the evidence stays; every step is
//! attempted even if another fails, each is bounded in time; then the
//! container is inspected again and whatever is not isolated yet (not
//! paused, a network still or newly attached, a restart policy) is fixed and
//! checked again, with backoff, until it holds — the report says
//! "verified" only when an inspect showed all three (paused: the engine
//! says so, or the kernel's freezer does while the engine, having lost
//! track of its own pause, says running).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bollard::{
    Docker,
    models::{
        ContainerInspectResponse, ContainerUpdateBody, NetworkDisconnectRequest, RestartPolicy,
        RestartPolicyNameEnum,
    },
};
use serde::Serialize;

use super::{
    engine::{Engine, EngineError},
    frozen, link_cut,
};

/// Set while any container is quarantined; the gate reads it.
#[derive(Debug, Clone, Default)]
pub struct QuarantineLock(Arc<AtomicBool>);

impl QuarantineLock {
    /// Whether sensitive operations are locked.
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Locks or unlocks.
    pub fn set(&self, locked: bool) {
        self.0.store(locked, Ordering::SeqCst);
    }
}

/// How long isolation waits for execs being started to settle.
const EXEC_SETTLE: Duration = Duration::from_millis(500);
/// Verification rounds (inspect, fix what is not isolated) before giving
/// up for now; the monitor tries again at its next poll.
const VERIFY_ROUNDS: u32 = 6;
/// Wait before the second round; doubled each round.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// How often it looks.
const EXEC_POLL: Duration = Duration::from_millis(2);
/// Bound on each isolation step: a wedged engine must not stall the monitor.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// When each part of isolation was done, in ms since the trigger arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// The response began.
    pub decided_ms: Option<u64>,
    /// The container's links were down (set from the host).
    pub links_cut_ms: Option<u64>,
    /// Execs being started had their process (pausing could begin).
    pub execs_settled_ms: Option<u64>,
    /// The pause returned.
    pub paused_ms: Option<u64>,
    /// The engine had disconnected the last network.
    pub networks_ms: Option<u64>,
    /// An inspect showed the container isolated.
    pub verified_ms: Option<u64>,
}

/// What isolation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IsolationReport {
    /// Execs waited for before pausing (they were being started).
    pub execs_settled: Vec<String>,
    /// Links set down from the host, in the container's namespace.
    pub links_cut: Vec<String>,
    /// The container is paused.
    pub paused: bool,
    /// The engine said "running" while the kernel showed the container's
    /// cgroup frozen (the engine lost track of its own pause, e.g. killed
    /// in the middle of it): judged paused by the kernel's freezer.
    pub paused_per_kernel: bool,
    /// Networks it was disconnected from.
    pub networks_disconnected: Vec<String>,
    /// The restart policy is now "no".
    pub restart_policy_cleared: bool,
    /// Steps that failed, with the engine's words (retried ones included).
    pub errors: Vec<String>,
    /// An inspect after isolating showed it paused, without networks, with
    /// restart policy "no".
    pub verified: bool,
    /// What the last verification still found, when not verified.
    pub remaining: Vec<String>,
    /// Verification rounds run.
    pub rounds: u32,
    /// When each part was done.
    pub timings: Timings,
}

impl IsolationReport {
    /// "verified", or "incomplete: …" naming what is not isolated.
    #[must_use]
    pub fn state(&self) -> String {
        if self.verified {
            "verified".to_owned()
        } else if self.remaining.is_empty() {
            format!("incomplete: {}", self.errors.join("; "))
        } else {
            format!("incomplete: {}", self.remaining.join(", "))
        }
    }
}

fn elapsed_ms(since: Instant) -> Option<u64> {
    u64::try_from(since.elapsed().as_millis()).ok()
}

/// What isolation needs to know from the inspect taken before it.
#[derive(Debug, Clone, Default)]
pub struct Before {
    /// The container's full id.
    pub id: String,
    /// The host pid of its main process (0 when not running).
    pub pid: i32,
    /// Exec ids of the container.
    pub exec_ids: Vec<String>,
    /// Networks it is connected to.
    pub networks: Vec<String>,
    /// The network namespace it shares (`host`, `container:<id>`), if any.
    pub shared_network: Option<String>,
}

impl Before {
    /// From an inspect document.
    #[must_use]
    pub fn of(inspect: &ContainerInspectResponse) -> Self {
        let pid = inspect
            .state
            .as_ref()
            .and_then(|state| state.pid)
            .and_then(|pid| i32::try_from(pid).ok())
            .unwrap_or(0);
        Self {
            id: inspect.id.clone().unwrap_or_default(),
            pid,
            exec_ids: inspect.exec_ids.clone().unwrap_or_default(),
            networks: inspect
                .network_settings
                .as_ref()
                .and_then(|settings| settings.networks.as_ref())
                .map(|networks| networks.keys().cloned().collect())
                .unwrap_or_default(),
            shared_network: shared_network(inspect),
        }
    }
}

async fn bounded<T>(
    step: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{step}: {}", EngineError::from(err))),
        Err(_) => Err(format!(
            "{step}: the engine did not answer within {} s (a pending exec may hold the container; see docs/integrity.md)",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

/// Waits (briefly) until no exec of the container is between "start
/// requested" and "has a pid": pausing in that window leaves `runc exec`
/// frozen and the engine's container lock held (Docker 20.10). An exec
/// created but never started costs the whole wait; starting it after the
/// pause is refused by the engine.
async fn settle_execs(docker: &Docker, exec_ids: &[String]) -> Vec<String> {
    let deadline = Instant::now() + EXEC_SETTLE;
    let mut waited = Vec::new();
    for id in exec_ids {
        loop {
            // The engine marks an exec running before `runc exec` returns;
            // only its pid (or exit code) says the start is over.
            let settled = match docker.inspect_exec(id).await {
                Ok(exec) => exec.exit_code.is_some() || exec.pid.unwrap_or(0) != 0,
                Err(_) => true,
            };
            if settled || Instant::now() >= deadline {
                break;
            }
            if waited.last() != Some(id) {
                waited.push(id.clone());
            }
            // A real wait: polling the engine for the exec's process.
            #[allow(clippy::disallowed_methods)]
            tokio::time::sleep(EXEC_POLL).await;
        }
    }
    waited
}

/// How pausing went.
struct Paused {
    /// Execs waited for.
    settled: Vec<String>,
    /// When they had settled.
    settled_ms: Option<u64>,
    /// The engine's pause.
    paused: Result<(), String>,
}

/// Lets execs being started settle, then has the engine pause the
/// container. (Freezing its cgroup from the host would be faster, but the
/// engine then refuses its own pause as "already paused" while its state
/// says running.)
async fn pause(docker: &Docker, container: &str, known: &Before, since: Instant) -> Paused {
    let settled = settle_execs(docker, &known.exec_ids).await;
    let settled_ms = elapsed_ms(since);
    let paused = match bounded("pause", docker.pause_container(container)).await {
        // Already paused is what we want.
        Err(err) if err.contains("already paused") => Ok(()),
        other => other,
    };
    Paused {
        settled,
        settled_ms,
        paused,
    }
}

async fn disconnect(docker: &Docker, container: &str, network: &str) -> Result<(), String> {
    let request = NetworkDisconnectRequest {
        container: container.to_owned(),
        force: Some(true),
    };
    let step = format!("disconnect {network}");
    match bounded(&step, docker.disconnect_network(network, request)).await {
        // Gone already is what we want.
        Err(err) if err.contains("is not connected") => Ok(()),
        other => other,
    }
}

async fn clear_restart_policy(docker: &Docker, container: &str) -> Result<(), String> {
    let update = ContainerUpdateBody {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    bounded("restart policy", docker.update_container(container, update)).await
}

/// What `inspect` shows is not isolated yet: (paused?, networks, policy?).
/// The network namespace a container shares (`host`, `container:<id>`), if any.
fn shared_network(inspect: &ContainerInspectResponse) -> Option<String> {
    let mode = inspect.host_config.as_ref()?.network_mode.as_deref()?;
    (mode == "host" || mode.starts_with("container:")).then(|| mode.to_owned())
}

/// Whether the kernel has the container frozen although the engine says it
/// runs (read off the async threads, two small kernel files, bounded like
/// an engine step).
async fn frozen_per_kernel(inspect: &ContainerInspectResponse) -> bool {
    let (Some(pid), Some(id)) = (
        inspect.state.as_ref().and_then(|state| state.pid),
        inspect.id.clone(),
    ) else {
        return false;
    };
    let read = tokio::task::spawn_blocking(move || frozen::cgroup_frozen(pid, &id));
    matches!(tokio::time::timeout(STEP_TIMEOUT, read).await, Ok(Ok(true)))
}

/// What is not isolated: (running unpaused, networks attached, a restart
/// policy). A stopped container runs nothing: it needs no pause.
fn not_isolated(inspect: &ContainerInspectResponse) -> (bool, Vec<String>, bool) {
    let state = inspect.state.as_ref();
    let paused = state.and_then(|state| state.paused).unwrap_or(false);
    let running = state.and_then(|state| state.running).unwrap_or(false);
    let networks = Before::of(inspect).networks;
    let policy_cleared = inspect
        .host_config
        .as_ref()
        .and_then(|host| host.restart_policy.as_ref())
        .and_then(|policy| policy.name)
        .is_none_or(|name| {
            matches!(
                name,
                RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY
            )
        });
    (running && !paused, networks, !policy_cleared)
}

async fn disconnect_all(
    docker: &Docker,
    container: &str,
    networks: &[String],
) -> Vec<(String, Result<(), String>)> {
    let mut each = tokio::task::JoinSet::new();
    for network in networks {
        let (docker, container, network) = (docker.clone(), container.to_owned(), network.clone());
        each.spawn(async move {
            let result = disconnect(&docker, &container, &network).await;
            (network, result)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = each.join_next().await {
        if let Ok(result) = done {
            results.push(result);
        }
    }
    results
}

/// Isolates `container`: its links are cut from the host and it is paused
/// at once; then the engine disconnects its networks and clears its
/// restart policy (after the pause: the engine's disconnect slows an exec
/// being started, which the pause must wait for — unless the links could
/// not be cut, then right away); then it verifies (and fixes) until an
/// inspect shows all three. `known` is what the monitor last saw of it
/// (pid, networks, execs being started); `since` is when the trigger
/// arrived.
pub async fn isolate(
    engine: &Engine,
    container: &str,
    known: &Before,
    since: Instant,
) -> IsolationReport {
    let docker = engine.docker();
    let mut report = IsolationReport::default();
    report.timings.decided_ms = elapsed_ms(since);
    let pause_done = tokio::sync::Notify::new();
    let network_path = async {
        // A shared namespace (host, another container's) is never cut.
        let cut = match &known.shared_network {
            Some(mode) => Err(link_cut::LinkCutError::SharedNamespace(mode.clone())),
            None => link_cut::cut_links(known.pid, &known.id).await,
        };
        let cut_ms = elapsed_ms(since);
        if cut.is_ok() {
            // A stored permit: the pause may have finished first.
            pause_done.notified().await;
        }
        let results = disconnect_all(docker, container, &known.networks).await;
        (cut, cut_ms, results, elapsed_ms(since))
    };
    let pause_path = async {
        let paused = pause(docker, container, known, since).await;
        let paused_ms = elapsed_ms(since);
        pause_done.notify_one();
        let policy = clear_restart_policy(docker, container).await;
        (paused, paused_ms, policy)
    };
    let ((cut, cut_ms, networks, networks_ms), (paused, paused_ms, policy)) =
        tokio::join!(network_path, pause_path);
    match cut {
        Ok(links) => {
            report.links_cut = links;
            report.timings.links_cut_ms = cut_ms;
        }
        Err(err) => report.errors.push(err.to_string()),
    }
    report.execs_settled = paused.settled;
    report.timings.execs_settled_ms = paused.settled_ms;
    match paused.paused {
        Ok(()) => {
            report.paused = true;
            report.timings.paused_ms = paused_ms;
        }
        Err(err) => report.errors.push(err),
    }
    for (network, result) in networks {
        match result {
            Ok(()) => report.networks_disconnected.push(network),
            Err(err) => report.errors.push(err),
        }
    }
    if !known.networks.is_empty() {
        report.timings.networks_ms = networks_ms;
    }
    match policy {
        Ok(()) => report.restart_policy_cleared = true,
        Err(err) => report.errors.push(err),
    }
    verify(engine, container, &mut report, since).await;
    report
}

/// Inspects `container` and fixes what is not isolated, round after round
/// with backoff, until an inspect shows it isolated or the rounds run out.
pub async fn verify(
    engine: &Engine,
    container: &str,
    report: &mut IsolationReport,
    since: Instant,
) {
    let docker = engine.docker();
    let mut wait = FIRST_RETRY;
    for round in 0..VERIFY_ROUNDS {
        if round > 0 {
            // A real wait: backoff between rounds against the engine.
            #[allow(clippy::disallowed_methods)]
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        report.rounds += 1;
        let inspect =
            match tokio::time::timeout(STEP_TIMEOUT, docker.inspect_container(container, None))
                .await
            {
                Ok(Ok(inspect)) => inspect,
                Ok(Err(err)) => {
                    let err = EngineError::from(err);
                    let gone = matches!(err, EngineError::NotFound(_));
                    report.errors.push(format!("verify (inspect): {err}"));
                    if gone {
                        // Removed: nothing is left to isolate, or to retry.
                        report.remaining = vec!["the container was removed".to_owned()];
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    report.errors.push(format!(
                        "verify (inspect): the engine did not answer within {} s",
                        STEP_TIMEOUT.as_secs()
                    ));
                    continue;
                }
            };
        if let Some(shared) = shared_network(&inspect) {
            // Nothing the engine can disconnect: the namespace is another's.
            report.remaining = vec![format!(
                "it shares the {shared} network namespace (stop it to isolate it)"
            )];
            return;
        }
        let (running, networks, policy) = not_isolated(&inspect);
        let frozen_unseen = running && frozen_per_kernel(&inspect).await;
        report.paused_per_kernel |= frozen_unseen;
        let running = running && !frozen_unseen;
        if !running && networks.is_empty() && !policy {
            report.verified = true;
            report.remaining.clear();
            report.paused = true;
            report.restart_policy_cleared = true;
            report.timings.verified_ms = elapsed_ms(since);
            return;
        }
        report.remaining = Vec::new();
        if running {
            report.remaining.push("not paused".to_owned());
            let now = Before::of(&inspect);
            if let Err(err) = pause(docker, container, &now, since).await.paused {
                report.errors.push(err);
            }
        }
        for network in &networks {
            report.remaining.push(format!("network {network} attached"));
            match disconnect(docker, container, network).await {
                Ok(()) => report.networks_disconnected.push(network.clone()),
                Err(err) => report.errors.push(err),
            }
        }
        if !networks.is_empty() {
            report.timings.networks_ms = elapsed_ms(since);
        }
        if policy {
            report
                .remaining
                .push("restart policy not \"no\"".to_owned());
            if let Err(err) = clear_restart_policy(docker, container).await {
                report.errors.push(err);
            }
        }
    }
}
