//! occcd served from this test process on its real socket, with a clock
//! the test moves: for what only an injected clock reaches in time (idle
//! timeouts, lifetimes, the watchdog's patience).
//!
//! Invariant: the daemon is the one `occcd` runs (`lifecycle::serve`, the
//! same store, gate and socket), only its clock is a [`ManualClock`] and
//! its service manager the one the test names; [`InProcessDaemon::start`]
//! returns once it answers a health check over the socket.

use std::{sync::Arc, time::Duration};

use occc_client::{ConnectOptions, OcccClient};
use occcd::{
    clock::{Clock, ManualClock, UnixMillis},
    lifecycle::{Reloader, SignalRequest, serve, supervision::ServiceManager},
};
use tokio::sync::{mpsc, oneshot};

use crate::DevDir;

/// A daemon serving from this process until [`InProcessDaemon::stop`].
#[derive(Debug)]
pub struct InProcessDaemon {
    /// The daemon's clock: moved only by the test.
    pub clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl InProcessDaemon {
    /// Serves `dir` with no service manager.
    pub async fn start(dir: &DevDir) -> Self {
        Self::start_telling(dir, ServiceManager::default()).await
    }

    /// Serves `dir`, telling `manager` how it is; the clock starts at the
    /// real time (TOTP codes come from it).
    pub async fn start_telling(dir: &DevDir, manager: ServiceManager) -> Self {
        #[allow(clippy::disallowed_methods)] // TOTP codes come from the real clock
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        let clock = Arc::new(ManualClock::starting_at(UnixMillis(
            i64::try_from(now).expect("milliseconds fit"),
        )));
        let (stop, stopped) = oneshot::channel::<()>();
        let config = dir.config();
        let daemon_clock: Arc<dyn Clock> = clock.clone();
        let served = tokio::spawn(async move {
            let (requests, received) = mpsc::channel(1);
            tokio::spawn(async move {
                let _ = stopped.await;
                let _ = requests
                    .send(SignalRequest::Stop("test over".to_owned()))
                    .await;
            });
            let running = config.clone();
            let reloader =
                Reloader::new(config.clone(), Box::new(move || Ok(running.clone())), None);
            serve(&config, daemon_clock, received, reloader, None, manager)
                .await
                .expect("in-process daemon");
        });
        let options = ConnectOptions::dev(dir.path());
        for _ in 0..500 {
            if let Ok(client) = OcccClient::connect(&options).await
                && client.health().await.is_ok()
            {
                return Self {
                    clock,
                    stop: Some(stop),
                    served,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the in-process daemon did not start");
    }

    /// Asks it to stop and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served
            .await
            .expect("the in-process daemon ended cleanly");
    }
}
