//! `occc.v1.Audit`: chain verification over gRPC.

use std::sync::Arc;

use occc_proto::v1::{BrokenLink, VerifyChainRequest, VerifyChainResponse, audit_server::Audit};
use tonic::{Request, Response, Status};

use crate::{
    audit::{ChainHasher, verify_chain},
    store::Store,
};

/// Handler of `occc.v1.Audit`.
#[derive(Debug)]
pub struct AuditService {
    store: Store,
    hasher: Arc<ChainHasher>,
}

impl AuditService {
    /// A handler reading `store` and checking links with `hasher`.
    #[must_use]
    pub fn new(store: Store, hasher: Arc<ChainHasher>) -> Self {
        Self { store, hasher }
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn verify_chain(
        &self,
        _request: Request<VerifyChainRequest>,
    ) -> Result<Response<VerifyChainResponse>, Status> {
        let report = verify_chain(&self.store, &self.hasher).await?;
        Ok(Response::new(VerifyChainResponse {
            entries_checked: report.entries_checked,
            first_broken: report.first_broken.map(|broken| BrokenLink {
                sequence: broken.sequence,
                reason: broken.reason,
            }),
        }))
    }
}
