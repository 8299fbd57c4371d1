//! Taking the sockets launchd made for occcd's plist (`Sockets`), through
//! `launch_activate_socket(3)`: macOS only.
//!
//! Invariant: the only `unsafe` is the FFI call, the read of the array it
//! returns (once) and its `free` (once), and the wrapping of each returned
//! descriptor — launchd hands them to this process alone — in exactly one
//! owner, then close-on-exec. "Not started by launchd" and "no such socket"
//! mean none passed.
#![allow(unsafe_code)]

use std::{
    ffi::CString,
    io,
    os::{
        fd::{FromRawFd, RawFd},
        raw::{c_char, c_int, c_void},
        unix::net::UnixListener,
    },
};

unsafe extern "C" {
    fn launch_activate_socket(
        name: *const c_char,
        fds: *mut *mut c_int,
        count: *mut usize,
    ) -> c_int;
    fn free(pointer: *mut c_void);
    fn fcntl(fd: c_int, command: c_int, ...) -> c_int;
}

/// `F_SETFD` and `FD_CLOEXEC` on macOS.
const F_SETFD: c_int = 2;
const FD_CLOEXEC: c_int = 1;

/// ESRCH (not started by launchd) and ENOENT (no socket of that name).
const NOT_PASSED: [c_int; 2] = [3, 2];

/// The listeners launchd made for the `Sockets` key `name`; `None` when
/// occcd was not started by launchd or the plist has no such key.
pub fn listeners(name: &str) -> io::Result<Option<Vec<UnixListener>>> {
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut fds: *mut c_int = std::ptr::null_mut();
    let mut count: usize = 0;
    // SAFETY: `name` is NUL-terminated and outlives the call; `fds` and
    // `count` are valid out-pointers that launchd writes once.
    let error = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut count) };
    if error != 0 {
        return if NOT_PASSED.contains(&error) {
            Ok(None)
        } else {
            Err(io::Error::from_raw_os_error(error))
        };
    }
    let raw: Vec<RawFd> = if fds.is_null() {
        Vec::new()
    } else {
        // SAFETY: on success launchd returns a malloc'd array of `count`
        // descriptors; it is read once here and freed once right after.
        let copied = unsafe { std::slice::from_raw_parts(fds, count) }.to_vec();
        // SAFETY: `fds` came from launchd's malloc and is not used again.
        unsafe { free(fds.cast()) };
        copied
    };
    let mut listeners = Vec::with_capacity(raw.len());
    for fd in raw {
        // SAFETY: each descriptor is an open socket launchd passed to this
        // process alone; wrapping it first gives it exactly one owner (closed
        // on every path below).
        let listener = unsafe { UnixListener::from_raw_fd(fd) };
        // No child process (a PAM helper) inherits it.
        // SAFETY: `fd` is open (owned by `listener`); F_SETFD takes an int.
        if unsafe { fcntl(fd, F_SETFD, FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        listeners.push(listener);
    }
    Ok(Some(listeners))
}
