//! Issue #5: the container integrity monitor against a real dockerd on a
//! private socket, with containers built from Debian's busybox-static.

mod acknowledge;
mod blinding;
mod drift;
mod evasion;
mod faults;
mod isolation;
mod occcctl_env;
mod posture;
mod quarantine;
mod snapshots;

use std::{path::Path, time::Duration};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    docker::TestContainer,
    fault_proxy::FaultProxy,
    people::{Person, bootstrap_super_admin, log_in_with_recovery_code},
};
use tokio_stream::StreamExt;

/// One `[[integrity.containers]]` entry for a test container.
pub struct Watch<'a> {
    pub name: &'a str,
    pub protected: &'a [&'a str],
    pub critical: &'a [&'a str],
    pub host_files: &'a [&'a Path],
    /// Process names allowed (the image's executables, by name).
    pub allow: &'a [&'a str],
}

impl<'a> Watch<'a> {
    /// A container watched with the test image's defaults.
    pub fn new(name: &'a str) -> Self {
        Self {
            name,
            protected: &["/app", "/bin", "/etc"],
            critical: &["/app/gateway.sh", "/bin/busybox"],
            host_files: &[],
            allow: &["sleep"],
        }
    }
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The daemon's `[integrity]` section: fast polling, the test engine.
pub fn integrity_config(socket: &Path, watched: &[Watch<'_>]) -> String {
    let mut text = format!(
        "[integrity]\ndocker_socket = {:?}\npoll_interval_ms = 500\nhash_interval_ms = 1000\n",
        socket.display().to_string()
    );
    for watch in watched {
        text.push_str(&format!(
            "[[integrity.containers]]\nname = {:?}\nexpected_user = \"node\"\nimage = \"occc-test/busybox:1\"\n\
             protected_paths = {}\ncritical_paths = {}\nwatched_host_files = {}\nprocess_allowlist = {}\n",
            watch.name,
            list(watch.protected.iter().map(|p| (*p).to_owned())),
            list(watch.critical.iter().map(|p| (*p).to_owned())),
            list(watch.host_files.iter().map(|p| p.display().to_string())),
            list(watch.allow.iter().map(|p| (*p).to_owned())),
        ));
    }
    text
}

/// A file the test creates to tell a container's own process to act (no
/// `docker exec`, which would itself quarantine it).
pub struct Go {
    dir: tempfile::TempDir,
    mount: String,
}

impl Go {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mount = format!("{}:/go:ro", dir.path().display());
        Self { dir, mount }
    }

    /// The `-v` value mounting it.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The container's command: wait for the signal, run `script`, then
    /// sleep as the gateway would.
    pub fn command(script: &str) -> Vec<String> {
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!(
                "while ! busybox test -e /go/now; do sleep 1; done\n{script}\nexec sleep 2147483647"
            ),
        ]
    }

    /// Tells the container to act.
    pub fn fire(&self) {
        std::fs::write(self.dir.path().join("now"), b"").unwrap();
    }
}

/// A container of the test image running `Go::command(script)`.
pub fn acting_container(
    socket: &Path,
    label: &str,
    flags: &[&str],
    go: &Go,
    script: &str,
) -> occc_tests::docker::TestContainer {
    let mut flags = flags.to_vec();
    flags.extend(["-v", go.mount()]);
    let command = Go::command(script);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let container =
        occc_tests::docker::TestContainer::create_with_command(socket, label, &flags, &command);
    container.start();
    container
}

/// The status of `container`.
pub async fn container_status(client: &OcccClient, container: &str) -> pb::ContainerStatus {
    let status = client
        .integrity()
        .get_integrity_status(pb::GetIntegrityStatusRequest {})
        .await
        .expect("integrity status")
        .into_inner();
    status
        .containers
        .into_iter()
        .find(|c| c.container == container)
        .expect("the container is monitored")
}

/// Pins `container`'s baseline (the session must be an elevated admin)
/// and waits until it is healthy against it.
pub async fn pin_and_wait_until_healthy(session: &OcccClient, container: &str) {
    session
        .integrity()
        .pin_baseline(pb::PinBaselineRequest {
            container: container.to_owned(),
        })
        .await
        .expect("pin the baseline");
    wait_for_status(session, container, Duration::from_secs(20), |s| {
        s.health() == pb::ContainerHealth::Healthy
    })
    .await;
}

/// A started, hardened container on an engine, and a fault relay in front
/// of that engine for occcd to use (its folder lives as long as this).
pub struct Relayed {
    pub gateway: TestContainer,
    pub proxy: FaultProxy,
    _folder: tempfile::TempDir,
}

impl Relayed {
    /// A dev folder whose daemon watches the container through the relay.
    pub fn watching_dir(&self) -> DevDir {
        let dir = DevDir::new();
        dir.set_config(&integrity_config(
            self.proxy.path(),
            &[Watch::new(&self.gateway.name)],
        ));
        dir
    }
}

/// Creates and starts container `label` on the engine at `socket` and a
/// relay to that engine.
pub fn relayed_container(socket: &Path, label: &str) -> Relayed {
    let gateway = TestContainer::create(socket, label, &TestContainer::hardened_flags());
    gateway.start();
    let folder = tempfile::tempdir().unwrap();
    let proxy = FaultProxy::start(&folder.path().join("engine.sock"), socket);
    Relayed {
        gateway,
        proxy,
        _folder: folder,
    }
}

/// A daemon started on `dir`, its super-admin `root` signed in, and the
/// watched `container` judged healthy.
pub struct Watching {
    pub daemon: RunningDaemon,
    pub anonymous: OcccClient,
    pub root: Person,
    pub session: OcccClient,
}

/// Starts the daemon of `dir` and waits (20 s at most) until `container`
/// is healthy.
pub async fn watching_healthy(dir: &DevDir, container: &str) -> Watching {
    let daemon = RunningDaemon::start(dir).await;
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(dir, &anonymous, "root").await;
    let session = log_in_with_recovery_code(&anonymous, &mut root).await;
    wait_for_status(&session, container, Duration::from_secs(20), |s| {
        s.health() == pb::ContainerHealth::Healthy
    })
    .await;
    Watching {
        daemon,
        anonymous,
        root,
        session,
    }
}

/// Waits (watching the stream) until `container`'s status satisfies `done`.
pub async fn wait_for_status(
    client: &OcccClient,
    container: &str,
    within: Duration,
    done: impl Fn(&pb::ContainerStatus) -> bool + Send + Sync + 'static,
) -> pb::ContainerStatus {
    let waiting = watch_until(client, container, within, done).await;
    match waiting.await {
        Ok(status) => status,
        Err(_) => panic!(
            "{container} did not reach the expected status within {within:?}; last: {:?}",
            container_status(client, container).await
        ),
    }
}

/// Starts watching `container` now (the watch outlives the session's
/// revocation by a quarantine), and resolves once `done` holds.
pub async fn watch_until(
    client: &OcccClient,
    container: &str,
    within: Duration,
    done: impl Fn(&pb::ContainerStatus) -> bool + Send + Sync + 'static,
) -> tokio::task::JoinHandle<pb::ContainerStatus> {
    let mut watch = client
        .integrity()
        .watch_integrity(pb::WatchIntegrityRequest {})
        .await
        .expect("watch")
        .into_inner();
    let container = container.to_owned();
    tokio::spawn(async move {
        let wait = async {
            while let Some(event) = watch.next().await {
                if let Ok(pb::IntegrityEvent {
                    kind: Some(pb::integrity_event::Kind::Status(status)),
                }) = event
                    && status.container == container
                    && done(&status)
                {
                    return status;
                }
            }
            panic!("the watch ended");
        };
        tokio::time::timeout(within, wait)
            .await
            .unwrap_or_else(|_| {
                panic!("{container} did not reach the expected status within {within:?}")
            })
    })
}

/// Check ids of the open findings.
pub fn check_ids(status: &pb::ContainerStatus) -> Vec<String> {
    let mut ids: Vec<String> = status.findings.iter().map(|f| f.check_id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The severity of the open finding `check_id`.
pub fn severity_of(status: &pb::ContainerStatus, check_id: &str) -> pb::Severity {
    status
        .findings
        .iter()
        .find(|f| f.check_id == check_id)
        .map(pb::Finding::severity)
        .unwrap_or_else(|| panic!("no {check_id} finding in {:?}", check_ids(status)))
}
