//! The named pipe: whose it is and who could serve it, from the kernel,
//! before a byte is sent (see [`super`]'s invariant).

use std::{io, path::Path, time::Duration};

use occc_peer_identity::{
    LOCAL_SYSTEM_SID, SERVING_RIGHTS, uid_of_sid,
    windows::{handle_descriptor, open_pipe_client},
};
use tokio::net::windows::named_pipe::NamedPipeClient;

use super::ConnectOptions;
use crate::ClientError;

/// `ERROR_PIPE_BUSY`: every instance is taken; the daemon makes the next.
const ERROR_PIPE_BUSY: i32 = 231;
/// How many times a busy pipe is tried before giving up.
const BUSY_TRIES: u32 = 40;

/// A pipe has no file to check: whether the daemon is there shows at the
/// first connection.
#[allow(clippy::unnecessary_wraps)] // the same signature as on Unix
pub(super) fn check_socket_file(_options: &ConnectOptions) -> Result<(), ClientError> {
    Ok(())
}

/// Opens the pipe and checks who serves it.
pub(super) async fn connect_checked(pipe: &Path, expected_uid: u32) -> io::Result<NamedPipeClient> {
    let mut tries = 0;
    let file = loop {
        match open_pipe_client(pipe) {
            Ok(file) => break file,
            Err(err) if err.raw_os_error() == Some(ERROR_PIPE_BUSY) && tries < BUSY_TRIES => {
                tries += 1;
                // The daemon makes the next instance at once; a short pause.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(err) => return Err(err),
        }
    };
    // The pipe's owner is whoever created it: nobody can make an object
    // LocalSystem's (or another user's) but that user or an administrator.
    let descriptor = handle_descriptor(&file)?;
    let refuse = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: {why}; refusing to talk to it", pipe.display()),
        )
    };
    if uid_of_sid(&descriptor.owner) != expected_uid {
        return Err(refuse(format!(
            "it belongs to {}, not the expected user",
            descriptor.owner
        )));
    }
    let trusted = [descriptor.owner.as_str(), LOCAL_SYSTEM_SID];
    if let Some(why) = descriptor.untrusted(&trusted, SERVING_RIGHTS) {
        return Err(refuse(format!("others could serve it ({why})")));
    }
    into_tokio(file)
}

/// Hands the opened pipe to tokio.
#[allow(unsafe_code)] // the one FFI boundary of the client: adopting a raw handle
fn into_tokio(file: std::fs::File) -> io::Result<NamedPipeClient> {
    use std::os::windows::io::IntoRawHandle;
    let handle = file.into_raw_handle();
    // SAFETY: `handle` is the client end of a named pipe, just opened with
    // FILE_FLAG_OVERLAPPED; `into_raw_handle` gave up the only owner, so
    // the NamedPipeClient is its sole owner and closes it once.
    unsafe { NamedPipeClient::from_raw_handle(handle) }
}
