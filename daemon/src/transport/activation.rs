//! Taking the listening socket from the service manager: systemd's socket
//! activation (`sd_listen_fds(3)`), or on macOS launchd's
//! (`launch_activate_socket(3)`, see [`super::launchd`]).
//!
//! Invariant: an inherited descriptor is used only when `LISTEN_PID` names
//! this process; it must be the one named [`FD_NAME`] in `LISTEN_FDNAMES`
//! (or the only one passed, when unnamed), a listening Unix stream socket,
//! bound to the configured `socket.path`, and its file no wider than one
//! occcd binds itself (mode, owner, group, folder). Anything else is
//! refused with the reason — never silently replaced by a socket of the daemon's own, which
//! would leave the service manager's socket unanswered.

use std::{
    fs,
    os::unix::fs::{FileTypeExt, MetadataExt},
    os::unix::net::UnixListener,
    path::Path,
};

use nix::sys::socket::{getsockopt, sockopt::AcceptConn};

use super::{
    error::{SocketError, io_error},
    socket::{BoundSocket, bind_socket, check_parent, resolve_group},
};
use crate::config::SocketConfig;

/// The descriptor name systemd gives `occcd.socket`'s listener (the unit's
/// name, unless the unit sets `FileDescriptorName=`).
pub const FD_NAME: &str = "occcd.socket";

/// The socket-activation variables, as read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub struct ActivationEnv {
    /// `LISTEN_PID`.
    pub pid: Option<String>,
    /// `LISTEN_FDS`.
    pub fds: Option<String>,
    /// `LISTEN_FDNAMES`.
    pub names: Option<String>,
}

impl ActivationEnv {
    /// Reads the three variables (a child process would ignore them
    /// anyway: `LISTEN_PID` names this process only).
    #[must_use]
    pub fn from_process() -> Self {
        Self {
            pid: std::env::var("LISTEN_PID").ok(),
            fds: std::env::var("LISTEN_FDS").ok(),
            names: std::env::var("LISTEN_FDNAMES").ok(),
        }
    }

    /// Which passed descriptor (0-based) is occcd's listener: `None` when
    /// nothing was passed to this process.
    pub fn listener_index(&self, own_pid: u32) -> Result<Option<usize>, SocketError> {
        let Some(pid) = self.pid.as_deref() else {
            return Ok(None);
        };
        let pid: u32 = pid
            .parse()
            .map_err(|_| refused(format!("LISTEN_PID={pid:?} is not a process id")))?;
        if pid != own_pid {
            return Ok(None); // meant for another process (our parent's)
        }
        let count = self.fds.as_deref().unwrap_or("0");
        let count: usize = count
            .parse()
            .map_err(|_| refused(format!("LISTEN_FDS={count:?} is not a number")))?;
        if count == 0 {
            return Ok(None);
        }
        let Some(names) = self.names.as_deref() else {
            return if count == 1 {
                Ok(Some(0))
            } else {
                Err(refused(format!(
                    "{count} descriptors passed without LISTEN_FDNAMES; pass one, or name it {FD_NAME}"
                )))
            };
        };
        let names: Vec<&str> = names.split(':').collect();
        if names.len() != count {
            return Err(refused(format!(
                "LISTEN_FDNAMES names {} descriptors but LISTEN_FDS passes {count}",
                names.len()
            )));
        }
        match names.iter().position(|name| *name == FD_NAME) {
            Some(index) => Ok(Some(index)),
            None if count == 1 => Ok(Some(0)),
            None => Err(refused(format!(
                "none of the descriptors passed ({}) is named {FD_NAME}",
                names.join(", ")
            ))),
        }
    }
}

/// A listening socket the service manager passed, checked (see the module
/// invariant) and not yet served.
#[derive(Debug)]
pub struct PassedSocket(UnixListener);

/// Takes the socket the service manager passed for `socket.path`, if it
/// passed one. Call it before any thread starts: reading the variables
/// removes `LISTEN_PID` and `LISTEN_FDS` from the environment.
pub fn take_passed_socket(config: &SocketConfig) -> Result<Option<PassedSocket>, SocketError> {
    let Some(listener) = passed_listener()? else {
        return Ok(None);
    };
    check_listener(&listener, &config.path)?;
    check_passed_socket_file(&config.path, config.group.as_deref())?;
    Ok(Some(PassedSocket(listener)))
}

/// Serves on `passed` when there is one, else binds `socket.path`
/// ([`bind_socket`]).
pub fn open_listener(
    config: &SocketConfig,
    passed: Option<PassedSocket>,
) -> Result<(tokio::net::UnixListener, BoundSocket), SocketError> {
    let Some(PassedSocket(listener)) = passed else {
        return bind_socket(config);
    };
    let path = config.path.as_path();
    let listener =
        tokio::net::UnixListener::from_std(listener).map_err(io_error("cannot serve", path))?;
    Ok((listener, BoundSocket::inherited(path)))
}

/// The passed socket's file must be what occcd would have made: a socket
/// nobody but its owner and group can connect to (mode `o-w`), owned by root
/// or occcd's user, in `socket.group` when one is configured, in a folder
/// of root's or occcd's that nobody else can write to (where it could be
/// swapped).
fn check_passed_socket_file(path: &Path, group: Option<&str>) -> Result<(), SocketError> {
    let metadata = fs::symlink_metadata(path).map_err(io_error("cannot inspect", path))?;
    if !metadata.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_owned()));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(refused(format!(
            "{} has mode {mode:04o}: others could connect; set SocketMode=0660 in occcd.socket",
            path.display()
        )));
    }
    let own_uid = nix::unistd::geteuid().as_raw();
    if metadata.uid() != 0 && metadata.uid() != own_uid {
        return Err(refused(format!(
            "{} belongs to uid {}; set SocketUser=root in occcd.socket",
            path.display(),
            metadata.uid()
        )));
    }
    if let Some(name) = group {
        let gid = resolve_group(name)?;
        if metadata.gid() != gid.as_raw() {
            return Err(refused(format!(
                "{} is not in socket.group {name:?}; set SocketGroup={name} in occcd.socket",
                path.display()
            )));
        }
    }
    check_parent(path.parent().unwrap_or(Path::new("/")))?;
    Ok(())
}

fn refused(reason: String) -> SocketError {
    SocketError::Activation(reason)
}

/// The listener systemd passed this process (`LISTEN_*`), if any.
#[cfg(not(target_os = "macos"))]
fn passed_listener() -> Result<Option<UnixListener>, SocketError> {
    let env = ActivationEnv::from_process();
    let Some(index) = env.listener_index(std::process::id())? else {
        return Ok(None);
    };
    let listener = listenfd::ListenFd::from_env()
        .take_unix_listener(index)
        .map_err(|err| {
            refused(format!(
                "passed descriptor #{index} is not a Unix socket: {err}"
            ))
        })?
        .ok_or_else(|| refused(format!("passed descriptor #{index} is missing")))?;
    Ok(Some(listener))
}

/// The listener launchd made for the plist's `Sockets` entry
/// [`LAUNCHD_SOCKETS`], if launchd started occcd with one.
#[cfg(target_os = "macos")]
fn passed_listener() -> Result<Option<UnixListener>, SocketError> {
    match super::launchd::listeners(LAUNCHD_SOCKETS) {
        Ok(None) => Ok(None),
        Ok(Some(mut listeners)) if listeners.len() == 1 => Ok(listeners.pop()),
        Ok(Some(listeners)) => Err(refused(format!(
            "launchd passed {} sockets for {LAUNCHD_SOCKETS}; give it exactly one",
            listeners.len()
        ))),
        Err(err) => Err(refused(format!("launch_activate_socket: {err}"))),
    }
}

/// The key under `Sockets` in occcd's launchd plist.
#[cfg(target_os = "macos")]
pub const LAUNCHD_SOCKETS: &str = "Listeners";

/// `listener` must be listening, on `expected` (`socket.path`); made
/// non-blocking for the runtime.
fn check_listener(listener: &UnixListener, expected: &Path) -> Result<(), SocketError> {
    if !getsockopt(listener, AcceptConn).unwrap_or(false) {
        return Err(refused("the passed socket is not listening".to_owned()));
    }
    let address = listener
        .local_addr()
        .map_err(|err| refused(format!("its address is unreadable: {err}")))?;
    match address.as_pathname() {
        Some(path) if path == expected => {}
        other => {
            return Err(refused(format!(
                "it listens on {}, but socket.path is {}; make ListenStream= (or the plist's SockPathName) and socket.path agree",
                other.map_or_else(
                    || "an unnamed address".to_owned(),
                    |p| p.display().to_string()
                ),
                expected.display()
            )));
        }
    }
    listener
        .set_nonblocking(true)
        .map_err(|err| refused(format!("cannot make it non-blocking: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pid: &str, fds: &str, names: Option<&str>) -> ActivationEnv {
        ActivationEnv {
            pid: Some(pid.to_owned()),
            fds: Some(fds.to_owned()),
            names: names.map(str::to_owned),
        }
    }

    #[test]
    fn nothing_passed_or_passed_to_another_process_means_bind_it_ourselves() {
        assert_eq!(ActivationEnv::default().listener_index(7).unwrap(), None);
        assert_eq!(env("8", "1", None).listener_index(7).unwrap(), None);
        assert_eq!(env("7", "0", None).listener_index(7).unwrap(), None);
    }

    #[test]
    fn the_named_descriptor_is_chosen_and_a_single_unnamed_one_is_taken() {
        assert_eq!(env("7", "1", None).listener_index(7).unwrap(), Some(0));
        assert_eq!(
            env("7", "1", Some("other")).listener_index(7).unwrap(),
            Some(0)
        );
        let named = env("7", "2", Some("metrics:occcd.socket"));
        assert_eq!(named.listener_index(7).unwrap(), Some(1));
    }

    #[test]
    fn ambiguous_or_malformed_variables_are_refused_with_the_reason() {
        for (case, expected) in [
            (env("7", "2", None), "without LISTEN_FDNAMES"),
            (
                env("7", "2", Some("a:b")),
                "none of the descriptors passed (a, b)",
            ),
            (env("7", "2", Some("occcd.socket")), "names 1 descriptors"),
            (env("x", "1", None), "not a process id"),
            (env("7", "many", None), "not a number"),
        ] {
            let err = case.listener_index(7).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
