//! What the service manager sees (issue #14): socket activation through
//! systemd's own `systemd-socket-activate`, `sd_notify` messages (READY,
//! STATUS, WATCHDOG, RELOADING) on a real datagram socket — the keep-alive
//! withheld while a disk hangs under the audit log — and SIGHUP reloading
//! what may change while the daemon serves.

use std::{
    os::unix::net::UnixDatagram,
    process::Command,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use occc_client::{ConnectOptions, OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon, breakable_disk::BreakableDisk, in_process_daemon::InProcessDaemon, skip,
    workspace_binary,
};
use occcd::lifecycle::supervision::ServiceManager;

use crate::support::{audit_rows_of_kind, eventually, signal};

const SOCKET_ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

/// `systemd-socket-activate -l <listen> --fdname=occcd.socket occcd …`:
/// binds `listen` at once (mode 0644), starts the daemon on the first
/// connection.
fn socket_activated(dir: &DevDir, listen: &std::path::Path) -> Command {
    let mut command = Command::new(SOCKET_ACTIVATE);
    command
        .arg("-l")
        .arg(listen)
        .arg("--fdname=occcd.socket")
        .arg(workspace_binary("occcd"))
        .args(dir.occcd_args(&[]));
    dir.log_to_folder(&mut command, "info,occcd=debug");
    command
}

/// [`socket_activated`] started, once its socket exists (occcd not yet).
async fn listening(dir: &DevDir, listen: &std::path::Path) -> std::process::Child {
    let child = socket_activated(dir, listen)
        .spawn()
        .expect("start systemd-socket-activate");
    eventually("the socket appearing", dir, || listen.exists()).await;
    child
}

/// Whether `systemd-socket-activate` is here (else the test is skipped).
fn socket_activate_present() -> bool {
    let present = std::path::Path::new(SOCKET_ACTIVATE).exists();
    if !present {
        skip::unavailable(
            "socket activation",
            "systemd-socket-activate (package systemd)",
        );
    }
    present
}

/// Connects to `socket` (which starts occcd) and waits for `child` to end.
async fn first_connection_ends_it(
    socket: &std::path::Path,
    mut child: std::process::Child,
) -> std::process::ExitStatus {
    let _ = std::os::unix::net::UnixStream::connect(socket);
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait")
}

#[tokio::test]
async fn socket_activation_starts_on_first_connect_and_leaves_the_socket_file() {
    if !socket_activate_present() {
        return;
    }
    let dir = DevDir::new();
    let child = listening(&dir, &dir.socket()).await;
    assert!(
        !dir.log().contains("occcd ready"),
        "nothing starts before a client connects"
    );
    // The first connection waits in the socket's backlog while occcd starts.
    let daemon = RunningDaemon::adopt(&dir, child).await;
    eventually("readiness on the passed socket", &dir, || {
        dir.log()
            .contains("socket_origin=passed by the service manager")
    })
    .await;
    let status = daemon.terminate().await;
    assert!(status.success(), "{status}");
    assert!(
        dir.socket().exists(),
        "the service manager's socket file is its own: occcd leaves it"
    );
}

#[tokio::test]
async fn an_activated_socket_for_another_path_is_refused_with_the_reason() {
    if !socket_activate_present() {
        return;
    }
    let dir = DevDir::new();
    let elsewhere = dir.path().join("elsewhere.sock");
    let child = listening(&dir, &elsewhere).await;
    assert!(!first_connection_ends_it(&elsewhere, child).await.success());
    let log = dir.log();
    assert!(log.contains("and socket.path agree"), "{log}");
    assert!(!dir.socket().exists(), "no socket of its own instead");
}

#[tokio::test]
async fn a_passed_socket_others_could_reach_is_refused() {
    if !socket_activate_present() {
        return;
    }
    let dir = DevDir::new();
    let child = listening(&dir, &dir.socket()).await;
    // As SocketMode=0666 would leave it: every local user may connect.
    std::fs::set_permissions(
        dir.socket(),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod");
    assert!(
        !first_connection_ends_it(&dir.socket(), child)
            .await
            .success()
    );
    let log = dir.log();
    assert!(
        log.contains("others could connect; set SocketMode=0660"),
        "{log}"
    );
}

/// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &DevDir) -> (Self, std::path::PathBuf) {
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let seen = Vec::new();
        (Self { socket, seen }, path)
    }

    /// The next message (within the socket's 20 s).
    async fn next(&mut self) -> String {
        let socket = self.socket.try_clone().expect("clone");
        let message = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0u8; 4096];
            let read = socket.recv(&mut buffer).map_err(|err| err.to_string())?;
            Ok::<_, String>(String::from_utf8_lossy(&buffer[..read]).into_owned())
        })
        .await
        .expect("join")
        .unwrap_or_else(|err| panic!("no message from occcd ({err}); saw {:?}", self.seen));
        self.seen.push(message.clone());
        message
    }

    /// Reads messages until one holds `line`; returns that message.
    async fn until(&mut self, line: &str) -> String {
        loop {
            let message = self.next().await;
            if message.lines().any(|l| l == line || l.starts_with(line)) {
                return message;
            }
        }
    }
}

#[tokio::test]
async fn the_service_manager_hears_ready_status_keep_alives_and_reloads() {
    let dir = DevDir::new();
    let (mut notify, path) = NotifySocket::bind(&dir);
    let mut command = dir.occcd_command(&[], "info,occcd=debug");
    // A 2 s watchdog: occcd checks itself and sends WATCHDOG=1 every second.
    command
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "2000000");
    let daemon = RunningDaemon::adopt(&dir, command.spawn().expect("spawn occcd")).await;
    let ready = notify.until("READY=1").await;
    // Anyone may read it: no sessions, no container health.
    assert!(
        ready.lines().any(|line| line == "STATUS=serving"),
        "{ready}"
    );
    let alive = notify.until("WATCHDOG=1").await;
    assert!(
        alive.lines().any(|line| line == "STATUS=serving"),
        "{alive}"
    );
    notify.until("WATCHDOG=1").await; // and again, every interval
    signal(&daemon, Signal::SIGHUP);
    notify.until("RELOADING=1").await;
    let reloaded = notify.until("READY=1").await;
    assert!(
        reloaded.contains("STATUS=reloaded: nothing changed"),
        "{reloaded}"
    );
    notify.until("WATCHDOG=1").await;
    daemon.terminate().await;
    notify.until("STOPPING=1").await;
}

#[tokio::test]
async fn sighup_applies_what_may_change_names_the_rest_and_survives_a_broken_file() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start_with_log_filter(&dir, "info").await;
    let pid = daemon.pid();
    // Reloadable: the monitor's poll interval and a response; not: the
    // idle timeout (sessions were issued under it) and the socket path.
    dir.set_config(
        "[integrity]\npoll_interval_ms = 2000\n[integrity.response]\nhigh = \"quarantine\"\n\
         [socket]\nshutdown_grace_ms = 1000\n",
    );
    signal(&daemon, Signal::SIGHUP);
    // Opened now: the file is broken below.
    let (store, _) = dir.open_store().await;
    let reloaded = || audit_rows_of_kind(&store, "config_reloaded");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rows = reloaded().await;
    while rows.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no reload audited; log:\n{}",
            dir.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        rows = reloaded().await;
    }
    let detail = &rows[0].2;
    assert!(
        detail.contains(
            r#""applied":["integrity.poll_interval_ms: 10000 -> 2000","integrity.response.high: \"alert\" -> \"quarantine\""]"#
        ),
        "{detail}"
    );
    assert!(
        detail.contains(r#""refused":["socket.shutdown_grace_ms: 10000 -> 1000"]"#),
        "{detail}"
    );
    assert!(
        dir.log()
            .contains("not reloaded: this setting changes only at a restart"),
        "{}",
        dir.log()
    );

    std::fs::write(dir.config_path(), "[integrity\nbroken").expect("write");
    signal(&daemon, Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloaded().await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no failed reload audited; log:\n{}",
            dir.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = reloaded().await;
    assert!(
        rows[1].2.contains(r#""error":"config file"#),
        "{}",
        rows[1].2
    );
    assert!(
        dir.log()
            .contains("reload refused: the config file is unusable"),
        "{}",
        dir.log()
    );
    // Still the same process, still serving.
    assert_eq!(daemon.pid(), pid);
    let client = OcccClient::connect(&ConnectOptions::dev(dir.path()))
        .await
        .expect("connect");
    client.health().await.expect("serving after both reloads");
}

/// `log.filter` changes with a reload when neither `OCCCD_LOG` nor
/// `--log-filter` overrides it: info lines appear in the log only after it.
#[tokio::test]
async fn sighup_changes_the_log_filter_the_config_names() {
    let dir = DevDir::new();
    dir.set_config("[log]\nfilter = \"warn\"\n");
    let mut command = dir.occcd_command(&[], "unused");
    command.env_remove("OCCCD_LOG");
    let daemon = RunningDaemon::adopt(&dir, command.spawn().expect("spawn occcd")).await;
    assert!(!dir.log().contains("occcd ready"), "{}", dir.log());

    dir.set_config("[log]\nfilter = \"info\"\n");
    signal(&daemon, Signal::SIGHUP);
    eventually("the new filter in force", &dir, || {
        dir.log().contains("log filter reloaded")
    })
    .await;
    let (store, _) = dir.open_store().await;
    let rows = audit_rows_of_kind(&store, "config_reloaded").await;
    store.close().await;
    assert!(
        rows.iter()
            .any(|(_, _, detail)| detail.contains(r#""log.filter: \"warn\" -> \"info\"""#)),
        "{rows:?}"
    );
    assert!(daemon.terminate().await.success());
    assert!(dir.log().contains("occcd stopped"), "{}", dir.log());
}

/// The disk under the store hangs (frozen) while the audit log commits an
/// entry: once the commit has waited past its patience on the daemon's
/// clock, occcd withholds its keep-alive and its status line says why —
/// systemd would restart it — and once the disk is back it sends it again,
/// having lost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_audit_commit_hangs_withholds_its_keep_alive_until_the_disk_is_back() {
    let test = "a_daemon_whose_audit_commit_hangs_withholds_its_keep_alive_until_the_disk_is_back";
    let dir = DevDir::new();
    // No monitor loop: only the audit writer can be stuck here.
    dir.set_config("[integrity]\nenabled = false\n");
    let state = dir.database().parent().expect("state folder").to_owned();
    let Some(disk) = BreakableDisk::mount(&state, 64) else {
        return skip::unavailable(test, "root, to loop-mount an ext4 image");
    };
    let (mut notify, path) = NotifySocket::bind(&dir);
    let manager = ServiceManager::at(&path, Some(Duration::from_secs(2))).expect("address");
    let daemon = InProcessDaemon::start_telling(&dir, manager).await;
    notify.until("WATCHDOG=1").await;
    let anonymous = OcccClient::connect(&ConnectOptions::dev(dir.path()))
        .await
        .expect("connect");

    let frozen = disk.freeze();
    // A refused call is audited: its entry's commit waits on the disk.
    let refused = tokio::spawn(async move {
        anonymous
            .users()
            .list_users(pb::ListUsersRequest::default())
            .await
    });
    // The daemon's clock moves 10 s at each check until it says it is stuck.
    let mut stuck = None;
    for _ in 0..30 {
        daemon.clock.advance(Duration::from_secs(10));
        let message = notify.next().await;
        if message.contains("STATUS=stuck") {
            stuck = Some(message);
            break;
        }
        assert!(message.contains("STATUS=serving"), "{message}");
    }
    let stuck = stuck.unwrap_or_else(|| panic!("never stuck; saw {:?}", notify.seen));
    assert!(
        stuck.contains("STATUS=stuck: audit writer stuck on a commit for "),
        "{stuck}"
    );
    assert!(!stuck.contains("WATCHDOG=1"), "{stuck}");
    let seconds: u64 = stuck
        .split("for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stuck}"));
    assert!(seconds > 60, "past its patience only: {stuck}");
    // No keep-alive at the checks after it either (two seconds of them).
    for _ in 0..4 {
        let message = notify.next().await;
        assert!(
            message.contains("STATUS=stuck") && !message.contains("WATCHDOG=1"),
            "{message}"
        );
    }

    // The disk is back: the entry commits and the keep-alive returns.
    drop(frozen);
    let alive = notify.until("WATCHDOG=1").await;
    assert!(alive.contains("STATUS=serving"), "{alive}");
    let refused = tokio::time::timeout(Duration::from_secs(20), refused)
        .await
        .expect("the call ends once the disk is back")
        .expect("join")
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    tokio::time::timeout(Duration::from_secs(20), daemon.stop())
        .await
        .expect("the daemon stops");
    let (store, hasher) = dir.open_store().await;
    let refusals = audit_rows_of_kind(&store, "call_refused").await;
    assert!(
        refusals
            .iter()
            .any(|(_, _, detail)| detail.contains("ListUsers")),
        "{refusals:?}"
    );
    let report = occcd::audit::verify_chain(&store, &hasher)
        .await
        .expect("verify");
    assert!(report.first_broken.is_none(), "{report:?}");
    store.close().await;
}
