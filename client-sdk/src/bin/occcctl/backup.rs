//! `occcctl backup FILE`: a backup of occcd's store, streamed by the daemon
//! to an elevated super-admin, written to FILE.
//!
//! Invariant: FILE is created 0600 and never over an existing file, and it
//! is kept only when everything arrived — the daemon's last part names the
//! size and SHA-256 of what it sent, and both match what was written;
//! otherwise it is removed.

use std::{io::Write, path::Path};

use occc_client::{ClientError, OcccClient, proto as pb};
use pb::backup_part::Part;
use ring::digest;
use tokio_stream::StreamExt;

/// Streams a backup into `file`; true when it was kept.
pub async fn run(client: &OcccClient, file: &Path, json: bool) -> Result<bool, ClientError> {
    let out = crate::private::file_options()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|err| ClientError::Input(format!("cannot create {}: {err}", file.display())))?;
    let received = receive(client, out, file).await;
    let written = match received {
        Ok(written) => written,
        Err(err) => {
            let _ = std::fs::remove_file(file);
            return Err(err);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": file,
                "file_bytes": written.file_bytes,
                "file_sha256": written.file_sha256,
                "audit_head": written.audit_head,
                "database_sha256": written.database_sha256,
                "created_at_unix_ms": written.created_at_unix_ms,
            })
        );
    } else {
        println!(
            "backup written to {}: {} bytes (sha256 {}), audit entries 1 to {}; \
             restore it on the daemon's host with `occcd restore FILE`",
            file.display(),
            written.file_bytes,
            written.file_sha256,
            written.audit_head
        );
    }
    Ok(true)
}

async fn receive(
    client: &OcccClient,
    mut out: std::fs::File,
    file: &Path,
) -> Result<pb::BackupWritten, ClientError> {
    let write_error =
        |err: std::io::Error| ClientError::Input(format!("writing {}: {err}", file.display()));
    let mut stream = client
        .backups()
        .create_backup(pb::CreateBackupRequest {})
        .await?
        .into_inner();
    let mut context = digest::Context::new(&digest::SHA256);
    let mut bytes = 0_u64;
    while let Some(part) = stream.next().await {
        match part?.part {
            Some(Part::Data(data)) => {
                context.update(&data);
                bytes += data.len() as u64;
                out.write_all(&data).map_err(write_error)?;
            }
            Some(Part::Written(written)) => {
                let sha256 = hex::encode(context.finish().as_ref());
                if written.file_bytes != bytes || written.file_sha256 != sha256 {
                    return Err(ClientError::Input(format!(
                        "the backup arrived damaged ({bytes} bytes, sha256 {sha256}; the \
                         daemon sent {} bytes, sha256 {}): nothing was kept",
                        written.file_bytes, written.file_sha256
                    )));
                }
                out.sync_all().map_err(write_error)?;
                return Ok(written);
            }
            None => {}
        }
    }
    Err(ClientError::Input(
        "the stream ended before the backup was complete: nothing was kept".into(),
    ))
}
