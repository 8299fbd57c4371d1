//! occcd without its socket: the store unlocked, the domain started and
//! every service behind the gate, called from inside this process — what
//! the `requests` fuzz target drives (fuzz-targets/src/requests.rs), so a
//! fuzzer reaches every handler's validation without a connection per input.
//!
//! Invariant: a call passes the same gate (with this process's own
//! credentials as the peer) and reaches the same routes
//! [`super::rpc::RpcServer`] serves, and nothing else; what belongs to the
//! socket — connections per uid, HTTP/2 limits and keepalive, tonic's
//! server stack — is not in its path. The state folder is locked as a
//! serving daemon locks it.

use std::{convert::Infallible, sync::Arc};

use tokio::sync::watch;
use tonic::{body::Body, service::Routes};
use tower::{Layer as _, Service as _};

use super::{StartupError, StateLock, domain::Domain, open_store, rpc};
use crate::{
    clock::Clock,
    config::Config,
    gate::{GateLayer, GatedService},
    transport::InProcessPeer,
};

/// A started daemon answering calls made in this process.
#[derive(Debug)]
pub struct InProcess {
    gated: GatedService<Routes>,
    domain: Domain,
    clock: Arc<dyn Clock>,
    /// Held until shutdown: no daemon or restore runs beside it.
    _state_lock: StateLock,
}

impl InProcess {
    /// Unlocks the store `config` names and starts the domain on it, as
    /// `occcd` does before it serves; the start is audited.
    pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let state_lock = super::state_lock(config)?;
        let unlocked = open_store(config).await?;
        let domain = Domain::start(config, &clock, unlocked).await?;
        domain.announce_started().await?;
        let (_health, health_service) = tonic_health::server::health_reporter();
        // What `System/GetInfo` says of the services: nothing, in-process.
        let (_view, health_watch) = watch::channel(Vec::new());
        let routes = rpc::routes(&domain, &clock, health_service, health_watch)?;
        let gate = GateLayer::new(rpc::gate(&domain, &clock), Arc::clone(&domain.metrics));
        Ok(Self {
            gated: gate.layer(routes),
            domain,
            clock,
            _state_lock: state_lock,
        })
    }

    /// Answers `request` as the daemon answers it over the socket, the
    /// caller being this process. A response's body is read by the caller
    /// (dropping it ends a stream).
    pub async fn call(&self, mut request: http::Request<Body>) -> http::Response<Body> {
        request
            .extensions_mut()
            .insert(InProcessPeer::this_process());
        let mut service = self.gated.clone();
        let answered: Result<http::Response<Body>, Infallible> = service.call(request).await;
        match answered {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// Shuts the domain down as a stopping daemon does (sessions written,
    /// the stop audited, the store closed).
    pub async fn shut_down(self, reason: &str) {
        let owed = self.domain.refusals.take_owed(self.clock.now(), true);
        crate::gate::record_owed(self.domain.audit.clone(), owed).await;
        self.domain.shut_down(reason.to_owned()).await;
    }
}
