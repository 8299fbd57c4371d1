//! `occc.v1.System`: version and uptime, for login screens and `occcctl status`.

use std::sync::Arc;

use occc_proto::v1::{DaemonInfo, GetInfoRequest, ServiceHealth, system_server::System};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::clock::{Clock, UnixMillis};

/// Handler of `occc.v1.System`.
#[derive(Debug)]
pub struct SystemService {
    clock: Arc<dyn Clock>,
    started_at: UnixMillis,
    health: watch::Receiver<Vec<ServiceHealth>>,
}

impl SystemService {
    /// A handler for a daemon that became ready at `started_at`, telling
    /// the services' health as `health` has it.
    #[must_use]
    pub fn new(
        clock: Arc<dyn Clock>,
        started_at: UnixMillis,
        health: watch::Receiver<Vec<ServiceHealth>>,
    ) -> Self {
        Self {
            clock,
            started_at,
            health,
        }
    }
}

#[tonic::async_trait]
impl System for SystemService {
    async fn get_info(
        &self,
        _request: Request<GetInfoRequest>,
    ) -> Result<Response<DaemonInfo>, Status> {
        Ok(Response::new(DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.clock.now().since(self.started_at).as_secs(),
            started_at_unix_ms: self.started_at.0,
            api_version: "occc.v1".to_owned(),
            services: self.health.borrow().clone(),
        }))
    }
}
