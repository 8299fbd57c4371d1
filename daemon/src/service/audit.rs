//! `occc.v1.Audit`: chain verification and reading entries over gRPC.

use std::sync::Arc;

use occc_proto::v1::{
    AuditEntry, AuditEntryList, BrokenLink, ListAuditEntriesRequest, VerifyChainRequest,
    VerifyChainResponse, audit_server::Audit,
};
use tonic::{Request, Response, Status};

use crate::{
    audit::{AuditPage, AuditQuery, ChainHasher, list_entries, verify_chain},
    store::{AuditRow, ReadCopy, Store},
};

/// Handler of `occc.v1.Audit`.
#[derive(Debug)]
pub struct AuditService {
    store: Store,
    hasher: Arc<ChainHasher>,
    /// The last page answered and its query, while the log is unchanged
    /// (a frontend polls the newest entries).
    last_page: ReadCopy<(AuditQuery, AuditPage)>,
}

impl AuditService {
    /// A handler reading `store` and checking links with `hasher`.
    #[must_use]
    pub fn new(store: Store, hasher: Arc<ChainHasher>) -> Self {
        Self {
            store,
            hasher,
            last_page: ReadCopy::default(),
        }
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

    async fn list_audit_entries(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<AuditEntryList>, Status> {
        let request = request.into_inner();
        let query = AuditQuery {
            page_size: request.page_size,
            page_token: request.page_token,
            since_unix_ms: request.since_unix_ms,
            until_unix_ms: request.until_unix_ms,
            actor: request.actor,
            kind: request.kind,
        };
        // Read the version first: an append that ends after it changes it.
        let version = self.store.audit_version();
        let page = match self
            .last_page
            .get(version)
            .filter(|(asked, _)| *asked == query)
        {
            Some((_, page)) => page,
            None => {
                let page = list_entries(&self.store, &query).await?;
                self.last_page.put(version, (query, page.clone()));
                page
            }
        };
        Ok(Response::new(AuditEntryList {
            entries: page.entries.into_iter().map(audit_entry).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn audit_entry(row: AuditRow) -> AuditEntry {
    let id = |value: Option<i64>| value.and_then(|v| u32::try_from(v).ok());
    AuditEntry {
        sequence: u64::try_from(row.sequence).unwrap_or(0),
        at_unix_ms: row.at_unix_ms,
        kind: row.kind,
        actor_uid: id(row.actor_uid),
        actor_gid: id(row.actor_gid),
        actor_pid: id(row.actor_pid),
        actor: row.actor_user.unwrap_or_default(),
        detail_json: row.detail,
        prev_hash_hex: hex::encode(row.prev_hash),
        entry_hash_hex: hex::encode(row.entry_hash),
    }
}
