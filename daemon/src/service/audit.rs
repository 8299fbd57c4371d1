//! `occc.v1.Audit`: chain verification and reading entries over gRPC.

use std::sync::Arc;

use occc_proto::v1::{
    AuditCheckpoint, AuditEntry, AuditEntryList, AuditExportLines, AuditPublicKey, BrokenLink,
    ExportAuditRequest, GetAuditPublicKeyRequest, ListAuditEntriesRequest, VerifyChainRequest,
    VerifyChainResponse, WatchAuditRequest, audit_server::Audit,
};
use tonic::{Request, Response, Status};

use super::{
    audit_streams::{WatchFilter, audit_entry, export, follow},
    convert::caller,
    session_bound::{BoxStream, session_bound, stream_place, while_allowed},
    status::share_refused,
};
use crate::{
    audit::{
        AuditLog, AuditQuery, ChainHasher, checkpoint::CheckpointSigner, list_entries,
        verify_chain, verify_checkpoints,
    },
    auth::{AuthEngine, role::Role},
    clock::Clock,
    store::{ReadCopy, Store},
    transport::uid_shares::UidShares,
};

/// The longest kind or actor a watch filter may hold.
const MAX_FILTER_BYTES: usize = 128;
/// Exports running at once (each reads the whole range it covers), in all
/// and per peer uid.
const MAX_EXPORTS: usize = 2;
const EXPORTS_PER_UID: usize = 1;
/// Chain verifications running at once (each reads and hashes the whole
/// log), in all and per peer uid; of them, kept for administrators (who
/// may read the whole log), so operators calling back to back from two
/// OS users never hold every place.
const MAX_VERIFICATIONS: usize = 2;
const VERIFICATIONS_PER_UID: usize = 1;
const VERIFICATIONS_KEPT_FOR_ADMINS: usize = 1;
/// Watches open at once (each reads the store at every commit), in all and
/// per peer uid: eight uids at their share reach the total.
pub const AUDIT_WATCHES_TOTAL: usize = 64;
pub const AUDIT_WATCHES_PER_UID: usize = 8;

/// What the audit service reads, follows and signs with.
#[derive(Debug, Clone)]
pub struct AuditParts {
    /// The store holding the log.
    pub store: Store,
    /// The log (for the committed head).
    pub log: AuditLog,
    /// Checks the daemon's own links.
    pub hasher: Arc<ChainHasher>,
    /// Signs checkpoints and exports.
    pub signer: Arc<CheckpointSigner>,
    /// Sessions, which end streams.
    pub auth: Arc<AuthEngine>,
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// Places of long-lived streams, per peer uid.
    pub streams: Arc<UidShares>,
}

/// Handler of `occc.v1.Audit`.
#[derive(Debug)]
pub struct AuditService {
    parts: AuditParts,
    exports: Arc<UidShares>,
    verifications: Arc<UidShares>,
    watches: Arc<UidShares>,
    /// The last page answered (as sent: entries converted, hashes in hex)
    /// and its query, while the log is unchanged (a frontend polls the
    /// newest entries).
    last_page: ReadCopy<Arc<(AuditQuery, AuditEntryList)>>,
}

impl AuditService {
    /// A handler over `parts`.
    #[must_use]
    pub fn new(parts: AuditParts) -> Self {
        Self {
            parts,
            exports: UidShares::new(EXPORTS_PER_UID, MAX_EXPORTS),
            verifications: UidShares::new(VERIFICATIONS_PER_UID, MAX_VERIFICATIONS),
            watches: UidShares::new(AUDIT_WATCHES_PER_UID, AUDIT_WATCHES_TOTAL),
            last_page: ReadCopy::default(),
        }
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    type WatchAuditStream = BoxStream<AuditEntry>;
    type ExportAuditStream = BoxStream<AuditExportLines>;

    async fn verify_chain(
        &self,
        request: Request<VerifyChainRequest>,
    ) -> Result<Response<VerifyChainResponse>, Status> {
        let caller = caller(&request)?;
        // Held until the verification ends, or its caller goes away or is
        // logged out (the verification is then dropped).
        let kept = if caller.session.role >= Role::Admin {
            0
        } else {
            VERIFICATIONS_KEPT_FOR_ADMINS
        };
        let _place = self
            .verifications
            .take_leaving(caller.peer.uid, kept)
            .map_err(|refused| share_refused("audit chain verifications running", refused))?;
        let parts = &self.parts;
        let report = while_allowed(&parts.auth, &caller, async {
            let mut report = verify_chain(&parts.store, &parts.hasher).await?;
            if report.first_broken.is_none() {
                report.first_broken =
                    verify_checkpoints(&parts.store, parts.signer.public_key()).await?;
            }
            Ok::<_, Status>(report)
        })
        .await?;
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
        let version = self.parts.store.audit_version();
        let list = match self.last_page.get(version).filter(|held| held.0 == query) {
            Some(held) => held.1.clone(),
            None => {
                let page = list_entries(&self.parts.store, &query).await?;
                let list = AuditEntryList {
                    entries: page.entries.into_iter().map(audit_entry).collect(),
                    next_page_token: page.next_page_token,
                };
                self.last_page.put(version, Arc::new((query, list.clone())));
                list
            }
        };
        Ok(Response::new(list))
    }

    async fn watch_audit(
        &self,
        request: Request<WatchAuditRequest>,
    ) -> Result<Response<Self::WatchAuditStream>, Status> {
        let caller = caller(&request)?;
        let body = request.into_inner();
        let place = stream_place(&self.parts.streams, &caller)?;
        for (field, value) in [("kind", &body.kind), ("actor", &body.actor)] {
            if value.len() > MAX_FILTER_BYTES {
                return Err(Status::invalid_argument(format!(
                    "{field}: at most {MAX_FILTER_BYTES} bytes"
                )));
            }
        }
        let head = self.parts.log.committed_head();
        let after = match body.after_sequence {
            Some(sequence) => i64::try_from(sequence).unwrap_or(i64::MAX),
            None => *head.borrow(),
        };
        let filter = WatchFilter {
            kind: body.kind,
            actor: body.actor,
        };
        let slot = self
            .watches
            .take(caller.peer.uid)
            .map_err(|refused| share_refused("audit watches", refused))?;
        let entries = follow(self.parts.store.clone(), head, after, filter, slot);
        Ok(Response::new(session_bound(
            entries,
            Arc::clone(&self.parts.auth),
            caller,
            place,
        )))
    }

    async fn export_audit(
        &self,
        request: Request<ExportAuditRequest>,
    ) -> Result<Response<Self::ExportAuditStream>, Status> {
        let caller = caller(&request)?;
        let place = stream_place(&self.parts.streams, &caller)?;
        let slot = self
            .exports
            .take(caller.peer.uid)
            .map_err(|refused| share_refused("audit exports running", refused))?;
        let lines = export(
            self.parts.store.clone(),
            Arc::clone(&self.parts.signer),
            Arc::clone(&self.parts.clock),
            request.get_ref().first_sequence,
            slot,
        );
        Ok(Response::new(session_bound(
            lines,
            Arc::clone(&self.parts.auth),
            caller,
            place,
        )))
    }

    async fn get_audit_public_key(
        &self,
        _request: Request<GetAuditPublicKeyRequest>,
    ) -> Result<Response<AuditPublicKey>, Status> {
        let newest = self
            .parts
            .store
            .audit_checkpoint_at_or_before(i64::MAX)
            .await
            .map_err(|err| Status::from(crate::audit::AuditError::from(err)))?;
        let key = self.parts.signer.public_key();
        Ok(Response::new(AuditPublicKey {
            algorithm: "ed25519".to_owned(),
            public_key: key.to_vec(),
            public_key_hex: hex::encode(key),
            newest_checkpoint: newest.map(|row| AuditCheckpoint {
                sequence: u64::try_from(row.sequence).unwrap_or(0),
                signed_at_unix_ms: row.at_unix_ms,
                link_hex: hex::encode(&row.link),
                signature_hex: hex::encode(&row.signature),
            }),
        }))
    }
}
