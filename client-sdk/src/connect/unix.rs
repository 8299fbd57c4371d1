//! The Unix socket: its file, its folders and its peer's kernel
//! credentials (see [`super`]'s invariant).

use std::{
    io,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::Path,
};

use tokio::net::UnixStream;

use super::ConnectOptions;
use crate::ClientError;

pub(super) fn check_socket_file(options: &ConnectOptions) -> Result<(), ClientError> {
    let path = &options.socket_path;
    let metadata = std::fs::symlink_metadata(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => ClientError::NoDaemon(path.clone()),
        _ => ClientError::Connect {
            socket: path.clone(),
            message: err.to_string(),
        },
    })?;
    if !metadata.file_type().is_socket() {
        return Err(ClientError::NotASocket(path.clone()));
    }
    if metadata.uid() != options.expected_owner_uid {
        return Err(ClientError::UntrustedSocket {
            socket: path.clone(),
            owner: metadata.uid(),
            expected: options.expected_owner_uid,
        });
    }
    // A relative path's folders above the working directory count too.
    let absolute = std::path::absolute(path).map_err(|err| ClientError::Connect {
        socket: path.clone(),
        message: format!("cannot resolve the socket's path: {err}"),
    })?;
    let mut holds_socket = true;
    for folder in absolute.ancestors().skip(1) {
        if folder.as_os_str().is_empty() {
            break;
        }
        check_folder(folder, options.expected_owner_uid, holds_socket)?;
        holds_socket = false;
    }
    Ok(())
}

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const OTHER_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// A folder on the way to the socket: nobody but `expected_uid` or root may
/// be able to put another socket there.
fn check_folder(folder: &Path, expected_uid: u32, holds_socket: bool) -> Result<(), ClientError> {
    let untrusted = |reason: String| ClientError::UntrustedFolder {
        folder: folder.to_path_buf(),
        reason,
    };
    let metadata = std::fs::symlink_metadata(folder)
        .map_err(|err| untrusted(format!("cannot inspect it: {err}")))?;
    if metadata.file_type().is_symlink() {
        // macOS ships /var as a link to /private/var, owned by root.
        if cfg!(target_os = "macos") && folder == Path::new("/var") && metadata.uid() == 0 {
            return Ok(());
        }
        return Err(untrusted(
            "it is a symbolic link; give the socket's real path".to_owned(),
        ));
    }
    if metadata.uid() != 0 && metadata.uid() != expected_uid {
        return Err(untrusted(format!(
            "it belongs to uid {}, who could replace the socket",
            metadata.uid()
        )));
    }
    // The socket's own folder: only its owner writes it. Folders above: not
    // writable by everyone unless sticky (/tmp); a root-owned folder its
    // group may write (macOS's /var/run) is accepted there.
    let mode = metadata.mode();
    let unsafe_mode = if holds_socket {
        mode & GROUP_OR_OTHER_WRITE != 0
    } else {
        mode & OTHER_WRITE != 0 && mode & STICKY == 0
    };
    if unsafe_mode {
        return Err(untrusted(format!(
            "users other than its owner can write it (mode {:o}), so the socket in it could be swapped",
            mode & 0o7777
        )));
    }
    Ok(())
}

pub(super) async fn connect_checked(path: &Path, expected_uid: u32) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path).await?;
    let peer_uid = stream.peer_cred()?.uid();
    if peer_uid != expected_uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the process serving {} runs as uid {peer_uid}, not {expected_uid}; refusing to talk to it",
                path.display()
            ),
        ));
    }
    Ok(stream)
}
