//! `occc.v1.Backups`: a backup of the store, streamed to an elevated
//! super-admin (the gate's table says who may call it).
//!
//! Invariant: the backup is audited, naming the caller, before its first
//! byte leaves; the stream ends with the caller's session or elevation, and
//! its last part gives the size and SHA-256 of everything sent before it.

use std::{io::Read, sync::Arc};

use occc_proto::v1::{
    BackupPart, BackupWritten, CreateBackupRequest, backup_part::Part, backups_server::Backups,
};
use ring::digest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    convert::caller,
    session_bound::{BoxStream, session_bound, still_allowed, stream_place},
};
use crate::{
    audit::{Actor, AuditEvent, AuditLog},
    auth::AuthEngine,
    backup::{BackupSource, Spooled},
    transport::uid_shares::UidShares,
};

/// Bytes per data part.
const PART_BYTES: usize = 64 * 1024;

/// Handler of `occc.v1.Backups`.
#[derive(Debug)]
pub struct BackupsService {
    source: Arc<BackupSource>,
    audit: AuditLog,
    auth: Arc<AuthEngine>,
    streams: Arc<UidShares>,
}

impl BackupsService {
    /// Backups from `source`, audited to `audit`, bound to sessions of
    /// `auth`, each stream holding a place of `streams`.
    #[must_use]
    pub fn new(
        source: Arc<BackupSource>,
        audit: AuditLog,
        auth: Arc<AuthEngine>,
        streams: Arc<UidShares>,
    ) -> Self {
        Self {
            source,
            audit,
            auth,
            streams,
        }
    }
}

#[tonic::async_trait]
impl Backups for BackupsService {
    type CreateBackupStream = BoxStream<BackupPart>;

    async fn create_backup(
        &self,
        request: Request<CreateBackupRequest>,
    ) -> Result<Response<Self::CreateBackupStream>, Status> {
        let caller = caller(&request)?;
        let place = stream_place(&self.streams, &caller)?;
        let spooled = self.source.spool().await.map_err(Status::from)?;
        // Making it took a while: the caller must still be allowed now.
        still_allowed(&self.auth, &caller)?;
        let written = &spooled.written;
        self.audit
            .record(
                Actor::user(Some(caller.peer), &caller.session.username),
                AuditEvent::StoreBackedUp {
                    audit_head: written.manifest.audit_head,
                    database_sha256: written.manifest.database_sha256.clone(),
                    file_bytes: written.file_bytes,
                },
            )
            .await?;
        let (sender, receiver) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || read_out(spooled, &sender));
        Ok(Response::new(session_bound(
            ReceiverStream::new(receiver),
            Arc::clone(&self.auth),
            caller,
            place,
        )))
    }
}

/// Sends the file in parts, then what was sent; stops when the receiver is
/// gone. Runs on a blocking thread (file reads).
fn read_out(mut spooled: Spooled, sender: &mpsc::Sender<Result<BackupPart, Status>>) {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut sent = 0_u64;
    loop {
        let mut buffer = vec![0; PART_BYTES];
        let read = match spooled.file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) => {
                tracing::error!(error = %err, "reading a spooled backup failed");
                let _ = sender.blocking_send(Err(Status::internal(
                    "the backup could not be read back; see the daemon's log",
                )));
                return;
            }
        };
        buffer.truncate(read);
        context.update(&buffer);
        sent += read as u64;
        let part = BackupPart {
            part: Some(Part::Data(buffer)),
        };
        if sender.blocking_send(Ok(part)).is_err() {
            return;
        }
    }
    if sent != spooled.written.file_bytes {
        tracing::error!(
            sent,
            written = spooled.written.file_bytes,
            "a spooled backup read back at another size"
        );
        let _ = sender.blocking_send(Err(Status::internal(
            "the backup read back at another size than it was written; see the daemon's log",
        )));
        return;
    }
    let manifest = &spooled.written.manifest;
    let written = BackupWritten {
        file_bytes: sent,
        file_sha256: hex::encode(context.finish().as_ref()),
        audit_head: manifest.audit_head,
        database_sha256: manifest.database_sha256.clone(),
        created_at_unix_ms: manifest.created_at_unix_ms,
    };
    let _ = sender.blocking_send(Ok(BackupPart {
        part: Some(Part::Written(written)),
    }));
}
