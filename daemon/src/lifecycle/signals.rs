//! The signals the daemon obeys: SIGTERM and SIGINT stop it, SIGHUP
//! reloads its config file (`systemctl reload occcd`).
//!
//! Invariant: the handlers are installed before the daemon does anything
//! else, so a stop signal is never lost, and neither a stop nor a reload
//! signal kills the process outright.

use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc,
};

/// What a signal asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalRequest {
    /// Stop, because of the named signal.
    Stop(String),
    /// Reread the config file.
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP handlers.
#[derive(Debug)]
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes with the next request (cancel-safe).
    pub async fn next(&mut self) -> SignalRequest {
        tokio::select! {
            _ = self.terminate.recv() => SignalRequest::Stop("SIGTERM".to_owned()),
            _ = self.interrupt.recv() => SignalRequest::Stop("SIGINT".to_owned()),
            _ = self.hangup.recv() => SignalRequest::Reload,
        }
    }

    /// The requests, as a channel [`super::serve`] reads (a task forwards
    /// them until the daemon stops).
    #[must_use]
    pub fn forward(mut self) -> mpsc::Receiver<SignalRequest> {
        let (requests, received) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                let request = self.next().await;
                if requests.send(request).await.is_err() {
                    return;
                }
            }
        });
        received
    }
}
