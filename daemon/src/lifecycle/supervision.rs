//! Telling the service manager how the daemon is (`sd_notify(3)`): a
//! `STATUS=` line a person can read in `systemctl status`, and the
//! watchdog's `WATCHDOG=1` keep-alive.
//!
//! Invariant: `WATCHDOG=1` is sent only after a check found the store
//! answering, the audit writer running and not stuck on a commit, and the
//! integrity monitor's loop going round; a daemon wedged in any of them
//! stops sending it and the service manager restarts it (`WatchdogSec=`).
//! Staleness is judged on the injected clock. Sending never waits: a
//! service manager that does not read misses notices, the daemon goes on.

use std::time::Duration;

use crate::clock::UnixMillis;

/// How long the store may take to answer the watchdog's query.
pub const STORE_PATIENCE: Duration = Duration::from_secs(5);
/// How long one audit commit may take before the writer counts as stuck.
pub const AUDIT_PATIENCE: Duration = Duration::from_secs(60);
/// How often the status line is refreshed when there is no watchdog.
pub const STATUS_EVERY: Duration = Duration::from_secs(30);
/// The shortest time between checks, whatever watchdog interval is asked.
pub const CHECK_AT_MOST_EVERY: Duration = Duration::from_millis(100);

/// What a check of the daemon's moving parts found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The store's answer to a trivial query.
    pub store: Result<(), String>,
    /// Whether the audit writer task runs.
    pub audit_running: bool,
    /// Since when the batch the audit writer commits has waited.
    pub audit_committing_since: Option<UnixMillis>,
    /// Since when the audit writer's batches fail to commit (`None`: the
    /// last one committed).
    pub audit_failing_since: Option<UnixMillis>,
    /// Whether the monitor has a live engine connection (`None`:
    /// monitoring is off).
    pub engine_connected: Option<bool>,
    /// The monitor loop's last turn and how long it may go without one
    /// (`None`: monitoring is off).
    pub monitor: Option<(Option<UnixMillis>, Duration)>,
    /// When the daemon became ready (a loop that never turned counts from here).
    pub ready_at: UnixMillis,
}

/// What is stuck, in words; empty when everything is alive.
#[must_use]
pub fn stuck(now: UnixMillis, probe: &Probe) -> Vec<String> {
    let mut stuck = Vec::new();
    if let Err(err) = &probe.store {
        stuck.push(format!("store not answering ({err})"));
    }
    if !probe.audit_running {
        stuck.push("audit writer stopped".to_owned());
    } else if let Some(since) = probe.audit_committing_since
        && now.since(since) > AUDIT_PATIENCE
    {
        stuck.push(format!(
            "audit writer stuck on a commit for {} s",
            now.since(since).as_secs()
        ));
    }
    if let Some((last, patience)) = probe.monitor {
        let last = last.unwrap_or(probe.ready_at);
        if now.since(last) > patience {
            stuck.push(format!(
                "integrity monitor loop silent for {} s",
                now.since(last).as_secs()
            ));
        }
    }
    stuck
}

/// The watchdog interval the service manager asked for, if it asked this
/// process (`WATCHDOG_USEC`, and `WATCHDOG_PID` when set, as in
/// `sd_watchdog_enabled(3)`).
#[must_use]
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.parse().ok().filter(|usec| *usec > 0)?;
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec))
}

/// How often to check and notify: a quarter of the watchdog interval (so
/// one slow or failed check is not yet a restart), at least every
/// [`STATUS_EVERY`] and at most every [`CHECK_AT_MOST_EVERY`].
#[must_use]
pub fn check_every(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(STATUS_EVERY, |interval| {
        (interval / 4).clamp(CHECK_AT_MOST_EVERY, STATUS_EVERY)
    })
}

/// The status line while all is well. Anyone on the host can read it
/// (`systemctl status`), so it says nothing the API keeps to logged-in
/// people (sessions, container health): only that occcd serves.
pub const SERVING: &str = "serving";

/// `text` on one line (a `STATUS=` value ends at a newline), bounded.
#[must_use]
pub fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    line.trim_end().to_owned()
}

/// What a watchdog check tells the service manager, given what it found
/// `stuck`: the keep-alive (when `watchdog`) and "serving" only when
/// nothing is; otherwise no keep-alive — systemd then kills and restarts
/// the daemon at its interval — and the stuck parts as the status line.
#[must_use]
pub fn after_check(stuck: &[String], watchdog: bool) -> (bool, String) {
    if stuck.is_empty() {
        (watchdog, SERVING.to_owned())
    } else {
        (false, one_line(&format!("stuck: {}", stuck.join("; "))))
    }
}

/// What the daemon tells its service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Start-up finished (or a reload did).
    Ready,
    /// A reload began.
    Reloading,
    /// The stop began.
    Stopping,
    /// The watchdog's keep-alive.
    Watchdog,
    /// The status line.
    Status(&'a str),
}

/// The service manager occcd reports to and the keep-alive interval it
/// asked for, read once from the environment (`NOTIFY_SOCKET`,
/// `WATCHDOG_USEC`, `WATCHDOG_PID`) before the runtime's threads start:
/// none when nothing started occcd as a notify service. On Windows none is
/// spoken to yet (the service control manager integration is not built,
/// see docs/operations.md).
#[derive(Debug, Clone, Default)]
pub struct ServiceManager {
    #[cfg(unix)]
    socket: Option<std::os::unix::net::SocketAddr>,
    watchdog: Option<Duration>,
}

impl ServiceManager {
    /// The one this process's environment names (`sd_notify(3)`): a path,
    /// or on Linux an abstract name written `@name`.
    #[must_use]
    pub fn from_env() -> Self {
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        #[cfg(unix)]
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|name| {
            notify_address(&name)
                .map_err(|err| {
                    tracing::warn!(error = %err, "NOTIFY_SOCKET not usable: the service manager hears nothing");
                })
                .ok()
        });
        Self {
            #[cfg(unix)]
            socket,
            watchdog,
        }
    }

    /// One listening on the datagram socket at `path`, wanting a keep-alive
    /// every `watchdog` (tests stand in for systemd with it).
    #[cfg(unix)]
    pub fn at(path: &std::path::Path, watchdog: Option<Duration>) -> std::io::Result<Self> {
        Ok(Self {
            socket: Some(std::os::unix::net::SocketAddr::from_pathname(path)?),
            watchdog,
        })
    }

    /// The keep-alive interval asked for (`None`: no watchdog).
    #[must_use]
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends `notices` in one datagram, if there is a service manager; a
    /// failure is logged and changes nothing else.
    pub fn notify(&self, notices: &[Notice<'_>]) {
        #[cfg(unix)]
        if let Some(address) = &self.socket {
            let message = notices.iter().fold(String::new(), |mut message, notice| {
                message.push_str(&notice.line());
                message.push('\n');
                message
            });
            // Never waits: a service manager whose queue is full misses this
            // notice (as a check it never heard), the daemon goes on.
            let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|socket| {
                socket.set_nonblocking(true)?;
                socket.send_to_addr(message.as_bytes(), address)
            });
            if let Err(err) = sent {
                tracing::warn!(error = %err, "service manager notification failed");
            }
        }
        #[cfg(not(unix))]
        let _ = notices;
    }
}

/// The address `NOTIFY_SOCKET` names: an absolute path, or on Linux an
/// abstract name (`@name`), as `sd_notify(3)` allows.
#[cfg(unix)]
fn notify_address(name: &std::ffi::OsStr) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match name.as_bytes() {
        #[cfg(target_os = "linux")]
        [b'@', abstract_name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
        }
        [b'/', ..] => std::os::unix::net::SocketAddr::from_pathname(name),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor an abstract name (@…)",
        )),
    }
}

impl Notice<'_> {
    /// The notice as its `sd_notify(3)` line.
    #[cfg(unix)]
    fn line(&self) -> String {
        match self {
            Notice::Ready => "READY=1".to_owned(),
            Notice::Reloading => "RELOADING=1".to_owned(),
            Notice::Stopping => "STOPPING=1".to_owned(),
            Notice::Watchdog => "WATCHDOG=1".to_owned(),
            Notice::Status(line) => format!("STATUS={}", one_line(line)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive_at(now: i64) -> Probe {
        Probe {
            store: Ok(()),
            audit_running: true,
            audit_committing_since: None,
            audit_failing_since: None,
            engine_connected: Some(true),
            monitor: Some((Some(UnixMillis(now)), Duration::from_secs(60))),
            ready_at: UnixMillis(0),
        }
    }

    #[test]
    fn a_daemon_whose_parts_move_is_alive() {
        assert!(stuck(UnixMillis(100_000), &alive_at(100_000)).is_empty());
        let mut off = alive_at(0);
        off.monitor = None;
        assert!(stuck(UnixMillis(10_000_000), &off).is_empty());
    }

    #[test]
    fn each_stuck_part_is_named_once_the_clock_passes_its_patience() {
        let mut probe = alive_at(0);
        probe.audit_committing_since = Some(UnixMillis(0));
        assert!(stuck(UnixMillis(60_000), &probe).is_empty(), "at the limit");
        let late = stuck(UnixMillis(61_000), &probe);
        assert_eq!(
            late,
            [
                "audit writer stuck on a commit for 61 s",
                "integrity monitor loop silent for 61 s"
            ]
        );
        probe.store = Err("disk I/O error".to_owned());
        probe.audit_running = false;
        probe.monitor = Some((None, Duration::from_secs(60)));
        let all = stuck(UnixMillis(1_000), &probe);
        assert_eq!(
            all,
            [
                "store not answering (disk I/O error)",
                "audit writer stopped"
            ],
            "a loop that never turned counts from readiness"
        );
    }

    #[test]
    fn the_keep_alive_is_withheld_while_anything_is_stuck() {
        assert_eq!(after_check(&[], true), (true, SERVING.to_owned()));
        assert_eq!(after_check(&[], false), (false, SERVING.to_owned()));
        let mut probe = alive_at(0);
        probe.store = Err("no answer within 5 s".to_owned());
        let found = stuck(UnixMillis(1_000), &probe);
        assert_eq!(
            after_check(&found, true),
            (
                false,
                "stuck: store not answering (no answer within 5 s)".to_owned()
            )
        );
    }

    #[test]
    fn a_status_stays_on_one_bounded_line() {
        assert_eq!(
            one_line("reload failed: line 1\n  |\n"),
            "reload failed: line 1   |"
        );
        assert_eq!(one_line(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn the_watchdog_is_for_this_process_only() {
        let interval = Some(Duration::from_secs(30));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), interval);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), interval);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_notify_socket_is_a_path_or_an_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        let path = notify_address(std::ffi::OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let name = notify_address(std::ffi::OsStr::new("@/org/freedesktop/notify")).unwrap();
        assert_eq!(
            name.as_abstract_name(),
            Some(&b"/org/freedesktop/notify"[..])
        );
        assert!(notify_address(std::ffi::OsStr::new(&format!("/{}", "x".repeat(200)))).is_err());
        assert!(notify_address(std::ffi::OsStr::new("run/notify")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_notice_is_one_line() {
        assert_eq!(Notice::Status("a\nb").line(), "STATUS=a b");
        assert_eq!(Notice::Watchdog.line(), "WATCHDOG=1");
    }

    #[test]
    fn checks_run_at_a_quarter_of_the_watchdog_interval() {
        assert_eq!(
            check_every(Some(Duration::from_secs(20))),
            Duration::from_secs(5)
        );
        assert_eq!(check_every(Some(Duration::from_secs(600))), STATUS_EVERY);
        assert_eq!(check_every(None), STATUS_EVERY);
        assert_eq!(
            check_every(Some(Duration::from_micros(1))),
            CHECK_AT_MOST_EVERY
        );
    }
}
