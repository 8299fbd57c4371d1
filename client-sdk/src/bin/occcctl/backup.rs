//! `occcctl backup FILE`: a backup of occcd's store, streamed by the daemon
//! to an elevated super-admin, written to FILE.
//!
//! Invariant: FILE appears only complete — written to a new 0600 file
//! beside it, synced, then linked to FILE (never over an existing file) —
//! and only when everything arrived: the daemon's last part names the size
//! and SHA-256 of what it sent, and both match what was written.

use std::{io::Write, path::Path};

use occc_client::{ClientError, OcccClient, proto as pb};
use pb::backup_part::Part;
use ring::digest;
use tokio_stream::StreamExt;

/// Streams a backup into `file`; true when it was kept.
pub async fn run(client: &OcccClient, file: &Path, json: bool) -> Result<bool, ClientError> {
    if file.exists() {
        return Err(ClientError::Input(format!(
            "{} exists: a backup never overwrites a file",
            file.display()
        )));
    }
    let partial = partial_name(file);
    let out = crate::private::file_options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|err| ClientError::Input(format!("cannot create {}: {err}", partial.display())))?;
    let received = receive(client, out, &partial).await.and_then(|written| {
        std::fs::hard_link(&partial, file).map_err(|err| {
            ClientError::Input(format!("cannot create {}: {err}", file.display()))
        })?;
        Ok(written)
    });
    let _ = std::fs::remove_file(&partial);
    let written = received?;
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

/// `.FILE.partial-<pid>` beside FILE.
fn partial_name(file: &Path) -> std::path::PathBuf {
    let name = file
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.partial-{}", std::process::id()))
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
