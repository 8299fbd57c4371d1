//! Exporting a snapshot as a tar archive (`manifest.json`,
//! `manifest.hmac` in hex, then `artifacts/<name>`), streamed.
//!
//! Invariant: at most one chunk per artifact plus [`PIPE_DEPTH`] pieces
//! are in memory at once, however large the snapshot; an artifact whose
//! bytes differ from its manifest entry (size or SHA-256), or a chunk that
//! does not open, ends the export with an error — never an archive that
//! silently differs from the manifest; the producer stops when the reader
//! goes away.

use std::{path::Path, sync::Arc};

use ring::digest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tar::{EntryType, Header};

use super::snapshot::{Manifest, SnapshotError, SnapshotVault};

/// Largest piece sent at once.
pub const PIECE_BYTES: usize = 64 * 1024;
/// Pieces waiting for the reader.
const PIPE_DEPTH: usize = 4;
/// A tar block.
const BLOCK: usize = 512;

type Pieces = mpsc::Sender<Result<Vec<u8>, SnapshotError>>;

/// Why the reader stopped listening: nothing more to do.
struct Gone;

async fn send(pieces: &Pieces, bytes: &[u8]) -> Result<(), Gone> {
    for piece in bytes.chunks(PIECE_BYTES) {
        pieces.send(Ok(piece.to_vec())).await.map_err(|_| Gone)?;
    }
    Ok(())
}

fn header_error(name: &str, err: &std::io::Error) -> SnapshotError {
    SnapshotError::Manifest(format!("building the export entry {name}: {err}"))
}

/// The header block(s) of entry `name` of `size` bytes (a GNU long-name
/// entry first when the name does not fit).
fn headers(name: &str, size: u64, mtime: u64) -> Result<Vec<u8>, SnapshotError> {
    let mut header = Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(EntryType::Regular);
    let mut blocks = Vec::new();
    if header.set_path(Path::new(name)).is_err() {
        let mut long = Header::new_gnu();
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        long.set_size(data.len() as u64);
        long.set_entry_type(EntryType::GNULongName);
        long.set_path("././@LongLink")
            .map_err(|err| header_error(name, &err))?;
        long.set_cksum();
        blocks.extend_from_slice(long.as_bytes());
        blocks.extend_from_slice(&data);
        blocks.resize(blocks.len().next_multiple_of(BLOCK), 0);
        let short: String = name.chars().take(90).collect();
        header
            .set_path(Path::new(&short))
            .map_err(|err| header_error(name, &err))?;
    }
    header.set_cksum();
    blocks.extend_from_slice(header.as_bytes());
    Ok(blocks)
}

fn padding(size: u64) -> usize {
    let used = usize::try_from(size % BLOCK as u64).unwrap_or(0);
    if used == 0 { 0 } else { BLOCK - used }
}

/// Writes the archive into `pieces`; an error ends it.
async fn produce(
    vault: Arc<SnapshotVault>,
    manifest: Manifest,
    manifest_text: String,
    hmac_hex: String,
    pieces: &Pieces,
) -> Result<Result<(), SnapshotError>, Gone> {
    let mtime = u64::try_from(manifest.created_at / 1000).unwrap_or(0);
    let small = [
        ("manifest.json", manifest_text.into_bytes()),
        ("manifest.hmac", hmac_hex.into_bytes()),
    ];
    for (name, bytes) in small {
        match headers(name, bytes.len() as u64, mtime) {
            Ok(blocks) => send(pieces, &blocks).await?,
            Err(err) => return Ok(Err(err)),
        }
        send(pieces, &bytes).await?;
        send(pieces, &vec![0u8; padding(bytes.len() as u64)]).await?;
    }
    for entry in &manifest.artifacts {
        let name = format!("artifacts/{}", entry.name);
        match headers(&name, entry.size, mtime) {
            Ok(blocks) => send(pieces, &blocks).await?,
            Err(err) => return Ok(Err(err)),
        }
        let mut chunks = vault.chunks(&manifest.snapshot_id, &entry.name);
        let mut context = digest::Context::new(&digest::SHA256);
        let mut sent = 0u64;
        loop {
            let chunk = match chunks.next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => return Ok(Err(err)),
            };
            sent += chunk.len() as u64;
            if sent > entry.size {
                break;
            }
            context.update(&chunk);
            send(pieces, &chunk).await?;
        }
        if sent != entry.size || hex::encode(context.finish()) != entry.sha256 {
            return Ok(Err(SnapshotError::Crypto(format!(
                "artifact {} differs from its manifest; run VerifySnapshot",
                entry.name
            ))));
        }
        send(pieces, &vec![0u8; padding(entry.size)]).await?;
    }
    send(pieces, &[0u8; 2 * BLOCK]).await?;
    Ok(Ok(()))
}

/// The archive of complete snapshot `id`, as pieces of at most
/// [`PIECE_BYTES`]; `NotFound` — or a refusal when the manifest is not
/// authentic — before anything is sent.
pub async fn export(
    vault: Arc<SnapshotVault>,
    id: &str,
) -> Result<ReceiverStream<Result<Vec<u8>, SnapshotError>>, SnapshotError> {
    let stored = vault.manifest(id).await?;
    if !stored.authentic {
        return Err(SnapshotError::Crypto(format!(
            "snapshot {id}: its manifest fails its HMAC (altered in the store); run VerifySnapshot"
        )));
    }
    let (pieces, out) = mpsc::channel(PIPE_DEPTH);
    tokio::spawn(async move {
        let (manifest, text, hmac_hex) = (stored.manifest, stored.text, stored.hmac_hex);
        if let Ok(Err(err)) = produce(vault, manifest, text, hmac_hex, &pieces).await {
            let _ = pieces.send(Err(err)).await;
        }
    });
    Ok(ReceiverStream::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_get_a_gnu_long_name_entry() {
        let name = format!("artifacts/files/{}.tar", "a".repeat(200));
        let blocks = headers(&name, 10, 0).unwrap();
        assert_eq!(blocks.len() % BLOCK, 0);
        assert_eq!(blocks[156], b'L', "long-name entry first");
        assert!(blocks.len() >= 3 * BLOCK);
        let short = headers("manifest.json", 10, 0).unwrap();
        assert_eq!(short.len(), BLOCK);
    }

    #[test]
    fn entries_are_padded_to_whole_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
