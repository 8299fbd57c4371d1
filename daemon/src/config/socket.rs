//! The socket section: where the daemon serves and how it treats the
//! connections it accepts.
//!
//! Invariant: a validated [`SocketConfig`] names a path the kernel accepts
//! (a local pipe name on Windows), and keepalive and preface times between
//! one second and an hour.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// The daemon's socket by default (macOS has `/var/run`, not `/run`).
#[cfg(all(unix, not(target_os = "macos")))]
pub const SYSTEM_SOCKET_PATH: &str = "/run/occcd/occcd.sock";
/// The daemon's named pipe by default (Windows).
#[cfg(windows)]
pub const SYSTEM_SOCKET_PATH: &str = occc_peer_identity::SYSTEM_PIPE;
/// The daemon's socket by default (macOS has `/var/run`, not `/run`).
#[cfg(target_os = "macos")]
pub const SYSTEM_SOCKET_PATH: &str = "/var/run/occcd/occcd.sock";

/// Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;
/// Longest keepalive or preface time accepted, in seconds.
const MAX_KEEPALIVE_SECS: u64 = 3_600;

/// The Unix domain socket the daemon serves on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketConfig {
    /// Socket path; its parent folder must not be writable by others.
    pub path: PathBuf,
    /// Group that may connect (socket mode 0660). Unset: the daemon's own group.
    pub group: Option<String>,
    /// How long calls still running at a stop signal may go on, in
    /// milliseconds, before they are cut off.
    pub shutdown_grace_ms: u64,
    /// A connection quiet this long, in seconds, is sent an HTTP/2 ping.
    pub keepalive_every_secs: u64,
    /// A ping unanswered this long, in seconds, drops the connection with
    /// its calls and streams (a hung or stopped client gives back its
    /// places); so does a write that waited `keepalive_every_secs` +
    /// `keepalive_answer_within_secs` for the client to read.
    pub keepalive_answer_within_secs: u64,
    /// A connection that has not sent HTTP/2's preface (its first 24 bytes;
    /// a client sends them at once) this many seconds after it was accepted
    /// is closed, and its place given back.
    pub preface_within_secs: u64,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(SYSTEM_SOCKET_PATH),
            group: None,
            shutdown_grace_ms: 10_000,
            keepalive_every_secs: 30,
            keepalive_answer_within_secs: 10,
            preface_within_secs: 10,
        }
    }
}

impl SocketConfig {
    /// [`SocketConfig::shutdown_grace_ms`] as a duration.
    #[must_use]
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// [`SocketConfig::keepalive_every_secs`] as a duration.
    #[must_use]
    pub fn keepalive_every(&self) -> Duration {
        Duration::from_secs(self.keepalive_every_secs)
    }

    /// [`SocketConfig::keepalive_answer_within_secs`] as a duration.
    #[must_use]
    pub fn keepalive_answer_within(&self) -> Duration {
        Duration::from_secs(self.keepalive_answer_within_secs)
    }

    /// [`SocketConfig::preface_within_secs`] as a duration.
    #[must_use]
    pub fn preface_within(&self) -> Duration {
        Duration::from_secs(self.preface_within_secs)
    }

    /// How long a write may wait for the client to read: a keepalive round
    /// (every + answer within), as long as a client that stops answering
    /// pings keeps its connection.
    #[must_use]
    pub fn write_stalled_after(&self) -> Duration {
        self.keepalive_every() + self.keepalive_answer_within()
    }

    /// Checks the section's values (part of [`super::Config::validate`]):
    /// the key and why, for the first one refused.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let socket_len = self.path.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH_BYTES {
            return Err((
                "socket.path",
                format!(
                    "{} is {socket_len} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH_BYTES}",
                    self.path.display()
                ),
            ));
        }
        if self.path.file_name().is_none() {
            return Err(("socket.path", "must name a file, not a folder".to_owned()));
        }
        #[cfg(windows)]
        if !occc_peer_identity::is_pipe_name(&self.path) {
            return Err((
                "socket.path",
                format!(
                    "{} is not a local pipe name; use \\\\.\\pipe\\<name>",
                    self.path.display()
                ),
            ));
        }
        for (key, secs) in [
            ("socket.keepalive_every_secs", self.keepalive_every_secs),
            (
                "socket.keepalive_answer_within_secs",
                self.keepalive_answer_within_secs,
            ),
            ("socket.preface_within_secs", self.preface_within_secs),
        ] {
            if !(1..=MAX_KEEPALIVE_SECS).contains(&secs) {
                return Err((
                    key,
                    format!("must be between 1 and {MAX_KEEPALIVE_SECS} seconds"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_and_preface_times_are_between_a_second_and_an_hour() {
        let mut socket = SocketConfig::default();
        assert!(socket.validate().is_ok());
        assert_eq!(socket.keepalive_every(), Duration::from_secs(30));
        assert_eq!(socket.keepalive_answer_within(), Duration::from_secs(10));
        socket.keepalive_every_secs = 0;
        let (key, _) = socket.validate().unwrap_err();
        assert_eq!(key, "socket.keepalive_every_secs");
        socket.keepalive_every_secs = 1;
        socket.keepalive_answer_within_secs = 3_601;
        let (key, _) = socket.validate().unwrap_err();
        assert_eq!(key, "socket.keepalive_answer_within_secs");
        socket.keepalive_answer_within_secs = 3_600;
        assert!(socket.validate().is_ok());
        assert_eq!(socket.preface_within(), Duration::from_secs(10));
        assert_eq!(
            SocketConfig::default().write_stalled_after(),
            Duration::from_secs(40)
        );
        socket.preface_within_secs = 0;
        let (key, _) = socket.validate().unwrap_err();
        assert_eq!(key, "socket.preface_within_secs");
        socket.preface_within_secs = 3_600;
        assert!(socket.validate().is_ok());
    }
}
