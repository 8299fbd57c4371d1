//! Tests that need a real component this machine lacks (a Docker engine,
//! root for PAM services and OS users, a readable `/proc/<pid>/mem`).
//!
//! Invariant: under CI (`CI` set and not "false") such a test fails — a
//! test cannot pass by not running; elsewhere it says why on stderr and is
//! written to the file `OCCC_SKIP_LOG` names, which `scripts/test` counts
//! as skipped in its closing line (not as passed).

use std::io::Write;

/// Whether this run is CI's, where every real component must be present.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false")
}

/// Records that `test` did not run because it `needs` something missing;
/// panics under CI. Call it, then return from the test.
pub fn unavailable(test: &str, needs: &str) {
    assert!(
        !in_ci(),
        "{test} needs {needs}, which this CI machine lacks: CI must run every real-component test"
    );
    eprintln!("\n*** SKIPPED {test}: needs {needs}; run scripts/test as root (CI runs it) ***\n");
    if let Some(log) = std::env::var_os("OCCC_SKIP_LOG") {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| writeln!(file, "{test}: needs {needs}"));
        if let Err(err) = written {
            eprintln!("skip not recorded: {err}");
        }
    }
}
