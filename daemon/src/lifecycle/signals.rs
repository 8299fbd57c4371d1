//! The stop signals the daemon obeys.
//!
//! Invariant: SIGTERM and SIGINT handlers are installed before the daemon
//! does anything else, so a stop signal is never lost (nor kills the
//! process outright).

/// SIGTERM and SIGINT handlers.
#[derive(Debug)]
pub struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Completes with the name of the first stop signal received.
    pub async fn received(mut self) -> String {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM".to_owned(),
            _ = self.interrupt.recv() => "SIGINT".to_owned(),
        }
    }
}
