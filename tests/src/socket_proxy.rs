//! A Unix-socket relay between occcd and the Docker engine, which a test
//! can cut and restore: an outage of the engine connection while the
//! engine itself keeps running (and keeps emitting events).
//!
//! Invariant: bytes are relayed unchanged; cutting drops every relayed
//! connection and removes the socket, so the outage is total.

use std::path::{Path, PathBuf};

use tokio::{
    net::{UnixListener, UnixStream},
    task::JoinHandle,
};

/// The relay.
#[derive(Debug)]
pub struct SocketProxy {
    path: PathBuf,
    target: PathBuf,
    task: Option<JoinHandle<()>>,
}

impl SocketProxy {
    /// Listens at `path`, relaying to `target`.
    pub fn start(path: &Path, target: &Path) -> Self {
        let mut proxy = Self {
            path: path.to_owned(),
            target: target.to_owned(),
            task: None,
        };
        proxy.restore();
        proxy
    }

    /// The socket occcd should use.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Listens again.
    pub fn restore(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("bind proxy socket");
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                relays.spawn(async move {
                    if let Ok(mut engine) = UnixStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        }));
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
