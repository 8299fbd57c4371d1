//! Reading files out of a container through the engine's archive API:
//! SHA-256 of every regular file under a path, hashed while the tar stream
//! arrives (snapshots stream the raw archive themselves, see `evidence`).
//!
//! Invariant: nothing is executed in the container; reads are bounded in
//! bytes, and a stream that ends early, exceeds the bound or stalls for
//! longer than [`CALL_DEADLINE`] is an error, never a partial success.

use std::path::{Path, PathBuf};

use bollard::{Docker, query_parameters::DownloadFromContainerOptions};
use ring::digest::{Context, SHA256};
use tokio::{io::AsyncReadExt, sync::mpsc, time::timeout};
use tokio_stream::StreamExt;
use tokio_util::io::StreamReader;

use super::engine::{CALL_DEADLINE, EngineError};

/// Read size while hashing.
const CHUNK: usize = 256 * 1024;
/// Files larger than this are hashed on a blocking thread while the next
/// chunk is read (the engine's stream and SHA-256 then use both cores).
const PIPELINE_FROM: u64 = 1024 * 1024;
/// Chunks in flight to that thread.
const PIPELINE_DEPTH: usize = 4;

/// SHA-256 of one file, computed here or beside the reading task.
enum Hasher {
    Inline(Box<Context>),
    Beside {
        chunks: mpsc::Sender<Vec<u8>>,
        digest: tokio::task::JoinHandle<String>,
    },
}

impl Hasher {
    fn beside() -> Self {
        let (chunks, mut incoming) = mpsc::channel::<Vec<u8>>(PIPELINE_DEPTH);
        let digest = tokio::task::spawn_blocking(move || {
            let mut context = Context::new(&SHA256);
            while let Some(chunk) = incoming.blocking_recv() {
                context.update(&chunk);
            }
            hex::encode(context.finish())
        });
        Self::Beside { chunks, digest }
    }

    async fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Inline(context) => context.update(bytes),
            // A closed channel means the thread is gone; finish() reports it.
            Self::Beside { chunks, .. } => {
                let _ = chunks.send(bytes.to_vec()).await;
            }
        }
    }

    async fn finish(self) -> Result<String, tokio::task::JoinError> {
        match self {
            Self::Inline(context) => Ok(hex::encode(context.finish())),
            Self::Beside { chunks, digest } => {
                drop(chunks);
                digest.await
            }
        }
    }
}

/// A regular file's digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HashedFile {
    /// Absolute path inside the container.
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// Whether any execute bit is set.
    pub executable: bool,
}

pub(super) fn io_error(err: bollard::errors::Error) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

pub(super) fn stalled(path: &str) -> EngineError {
    EngineError::Unreachable(format!(
        "reading {path}: the engine sent nothing for {} s",
        CALL_DEADLINE.as_secs()
    ))
}

pub(super) fn read_error(path: &str, err: &std::io::Error) -> EngineError {
    // The engine's own status (404 and friends) arrives as the stream's error.
    let message = err.to_string();
    if message.contains("404") || message.contains("No such") || message.contains("not find") {
        EngineError::NotFound(format!("{path}: {message}"))
    } else {
        EngineError::Unreachable(format!("reading {path}: {message}"))
    }
}

/// Where the archive of `requested` puts its entries: the tar holds paths
/// relative to the requested path's parent folder.
fn absolute(requested: &str, entry: &Path) -> String {
    let parent = Path::new(requested)
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    parent.join(entry).display().to_string()
}

/// SHA-256 of every regular file under `path` in `container`, sorted by
/// path; at most `max_bytes` of file content.
pub async fn hash_path(
    docker: &Docker,
    container: &str,
    path: &str,
    max_bytes: u64,
) -> Result<Vec<HashedFile>, EngineError> {
    let options = DownloadFromContainerOptions {
        path: path.to_owned(),
    };
    let stream = docker
        .download_from_container(container, Some(options))
        .map(|chunk| chunk.map_err(io_error));
    let mut archive = tokio_tar::Archive::new(StreamReader::new(stream));
    let mut entries = archive.entries().map_err(|err| read_error(path, &err))?;
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut buffer = vec![0u8; CHUNK];
    while let Some(entry) = timeout(CALL_DEADLINE, entries.next())
        .await
        .map_err(|_| stalled(path))?
    {
        let mut entry = entry.map_err(|err| read_error(path, &err))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(|err| read_error(path, &err))?;
        let absolute_path = absolute(path, &entry_path);
        let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
        let large = entry.effective_size() > PIPELINE_FROM;
        let mut hasher = if large {
            Hasher::beside()
        } else {
            Hasher::Inline(Box::new(Context::new(&SHA256)))
        };
        let mut size = 0u64;
        loop {
            let read = timeout(CALL_DEADLINE, entry.read(&mut buffer))
                .await
                .map_err(|_| stalled(path))?
                .map_err(|err| read_error(path, &err))?;
            if read == 0 {
                break;
            }
            size += read as u64;
            total += read as u64;
            if total > max_bytes {
                return Err(EngineError::Refused(format!(
                    "{path} holds more than {max_bytes} bytes; narrow the critical paths"
                )));
            }
            hasher.update(&buffer[..read]).await;
        }
        let sha256 = hasher
            .finish()
            .await
            .map_err(|err| EngineError::Refused(format!("hashing {absolute_path}: {err}")))?;
        files.push(HashedFile {
            path: absolute_path,
            sha256,
            size,
            executable,
        });
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_land_under_the_requested_parent() {
        assert_eq!(
            absolute("/app/gateway.sh", Path::new("gateway.sh")),
            "/app/gateway.sh"
        );
        assert_eq!(
            absolute("/app", Path::new("app/dist/x.js")),
            "/app/dist/x.js"
        );
        assert_eq!(absolute("/", Path::new("etc/passwd")), "/etc/passwd");
    }
}
