//! Cutting a quarantined container's network links from the host, without
//! the engine: about a millisecond, where the engine's own disconnect takes
//! tens (it deletes the veth pair). The engine's disconnect still follows,
//! and only an inspect showing no network verifies isolation.
//!
//! Invariant: acts only inside a network namespace that is neither the
//! daemon's own nor the host's (PID 1's), and that belonged to a process
//! sitting in the cgroup of the container named by its full id (the
//! namespace and the cgroup file are opened through one handle on
//! `/proc/<pid>`, which the kernel stops answering once that process has
//! exited, so a reused pid cannot point it elsewhere); works on a thread started for it
//! and ended after, never a pooled one, so nothing else ever runs in the
//! container's namespace; sets every link but loopback down, nothing more.

/// Why links were not cut (the engine's disconnect still runs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkCutError {
    /// The container's process could not be examined.
    #[error("links not cut: process {pid}: {reason}")]
    Process {
        /// The host pid tried.
        pid: i32,
        /// What failed.
        reason: String,
    },
    /// The process shares the daemon's network namespace (host network).
    #[error("links not cut: the container uses the host's network")]
    HostNetwork,
    /// The container shares another namespace (host, another container's).
    #[error("links not cut: the container shares the network namespace of {0}")]
    SharedNamespace(String),
    /// The pid no longer belongs to the container.
    #[error("links not cut: process {0} is no longer the container's")]
    NotTheContainer(i32),
    /// The kernel refused.
    #[error("links not cut: {0}")]
    Kernel(String),
    /// Not Linux: no network namespace to enter from here.
    #[error("links not cut: network namespaces are Linux's; the engine's disconnect isolates it")]
    Unsupported,
}

#[cfg(target_os = "linux")]
mod netlink;
#[cfg(target_os = "linux")]
pub use netlink::cut_links;

/// Off Linux the engine runs the container in a VM of its own: there is no
/// namespace to enter, and the engine's disconnect does the isolation.
#[cfg(not(target_os = "linux"))]
#[allow(clippy::unused_async)] // the same signature as on Linux
pub async fn cut_links(_pid: i32, _container_id: &str) -> Result<Vec<String>, LinkCutError> {
    Err(LinkCutError::Unsupported)
}
