//! The connection to the Docker Engine API (bollard over a Unix socket).
//!
//! Invariant: occcd speaks the highest API version both sides support and
//! refuses engines older than API 1.41 (Docker 20.10); it never pulls,
//! creates or removes anything — reads, pause, network disconnect, restart
//! policy, start/stop/restart only.

use std::{path::Path, time::Duration};

use bollard::{API_DEFAULT_VERSION, Docker};

/// Oldest engine API spoken: Docker 20.10.
pub const MIN_API: (u64, u64) = (1, 41);
/// Request timeout for one engine call (streams are not cut by it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Nothing answers at the socket, or the connection dropped.
    #[error("the container engine is unreachable: {0}")]
    Unreachable(String),
    /// The engine is older than API 1.41.
    #[error("the container engine speaks API {0}; occcd needs 1.41 (Docker 20.10) or newer")]
    TooOld(String),
    /// No such container or image.
    #[error("not found at the engine: {0}")]
    NotFound(String),
    /// The engine refused or failed the call.
    #[error("the engine refused: {0}")]
    Refused(String),
}

impl From<bollard::errors::Error> for EngineError {
    fn from(err: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        match err {
            E::DockerResponseServerError {
                status_code: 404,
                message,
            } => Self::NotFound(message),
            E::DockerResponseServerError { message, .. } => Self::Refused(message),
            E::DockerContainerWaitError { error, .. } => Self::Refused(error),
            other => Self::Unreachable(other.to_string()),
        }
    }
}

/// Longest any one engine call may take before the monitor stops waiting.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// `call`, bounded by [`CALL_DEADLINE`]; `what` names it in the error.
pub async fn within<T>(
    what: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(result) => result.map_err(EngineError::from),
        Err(_) => Err(EngineError::Unreachable(format!(
            "{what}: no answer within {} s",
            CALL_DEADLINE.as_secs()
        ))),
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    api_version: String,
}

impl Engine {
    /// Connects to the engine at `socket` (a named pipe on Windows) and
    /// agrees on an API version.
    pub async fn connect(socket: &Path) -> Result<Self, EngineError> {
        let path = socket.to_str().ok_or_else(|| {
            EngineError::Unreachable(format!("{} is not valid UTF-8", socket.display()))
        })?;
        #[cfg(unix)]
        let docker =
            Docker::connect_with_unix(path, REQUEST_TIMEOUT.as_secs(), API_DEFAULT_VERSION)?;
        // Docker Desktop's engine answers on a named pipe.
        #[cfg(windows)]
        let docker =
            Docker::connect_with_named_pipe(path, REQUEST_TIMEOUT.as_secs(), API_DEFAULT_VERSION)?;
        let docker = docker.negotiate_version().await?;
        let version = docker.client_version();
        let api_version = version.to_string();
        let (major, minor) = (version.major_version as u64, version.minor_version as u64);
        if (major, minor) < MIN_API {
            return Err(EngineError::TooOld(api_version));
        }
        Ok(Self {
            docker,
            api_version,
        })
    }

    /// The bollard client.
    #[must_use]
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The API version agreed on, e.g. `1.41`.
    #[must_use]
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
}
