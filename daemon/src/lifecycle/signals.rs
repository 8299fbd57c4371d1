//! The signals the daemon obeys: SIGTERM and SIGINT stop it, SIGHUP
//! reloads its config file (`systemctl reload occcd`). On Windows, Ctrl-C,
//! Ctrl-Break, closing the console and shutdown stop it; nothing reloads
//! (restart the service instead).
//!
//! Invariant: the handlers are installed before the daemon does anything
//! else, so a stop signal is never lost, and neither a stop nor a reload
//! signal kills the process outright.

use tokio::sync::mpsc;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalRequest {
    /// Stop, because of the named signal.
    Stop(String),
    /// Reread the config file.
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP handlers.
#[cfg(unix)]
#[derive(Debug)]
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
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
}

/// Console control handlers (Windows).
#[cfg(windows)]
#[derive(Debug)]
pub struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
}

#[cfg(windows)]
impl Signals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
        Ok(Self {
            ctrl_c: ctrl_c()?,
            ctrl_break: ctrl_break()?,
            close: ctrl_close()?,
            shutdown: ctrl_shutdown()?,
        })
    }

    /// Completes with the next request (cancel-safe).
    pub async fn next(&mut self) -> SignalRequest {
        let name = tokio::select! {
            _ = self.ctrl_c.recv() => "Ctrl-C",
            _ = self.ctrl_break.recv() => "Ctrl-Break",
            _ = self.close.recv() => "console closed",
            _ = self.shutdown.recv() => "system shutdown",
        };
        SignalRequest::Stop(name.to_owned())
    }
}

impl Signals {
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
