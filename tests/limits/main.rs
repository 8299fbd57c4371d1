//! The daemon's process limits, checked from a test process of their own:
//! the e2e binary serves a daemon in-process (`auth::streams`), which
//! forbids core files for the whole process it runs in — soft and hard
//! limit 0, which only a privileged process may raise again — so a daemon
//! started from there inherits zeros and its own would prove nothing.

use std::fs;

use occc_tests::{DevDir, RunningDaemon};

#[tokio::test]
async fn the_daemon_never_dumps_core() {
    // Keys and decrypted pages live in its memory: however it was started, a
    // crash writes no core file. Started here with core files allowed (the
    // limits it inherits), so the zeros below are the daemon's own doing.
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
    let inherited = getrlimit(Resource::RLIMIT_CORE).unwrap();
    if setrlimit(Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY).is_err() {
        if inherited.1 == 0 {
            occc_tests::skip::unavailable(
                "the_daemon_never_dumps_core",
                "core files allowed to it (its hard limit is 0 and it may not raise it)",
            );
            return;
        }
        setrlimit(Resource::RLIMIT_CORE, inherited.1, inherited.1).unwrap();
    }
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    setrlimit(Resource::RLIMIT_CORE, inherited.0, inherited.1).unwrap();
    let limits = fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
