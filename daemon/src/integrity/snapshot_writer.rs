//! Writing a forensic snapshot as its evidence arrives: each artifact is
//! cut into chunks, each chunk sealed and stored before the next is read.
//!
//! Invariant: at most one chunk ([`CHUNK_BYTES`]) of an artifact is held
//! in memory; the snapshot's byte bound is applied as bytes arrive — an
//! artifact cut at the bound is marked partial, and later ones are named
//! truncated without being read; every chunk is sealed bound to its
//! snapshot, artifact and position; the manifest, written last and
//! authenticated, is what makes the snapshot visible.

use ring::{digest, hmac};

use super::snapshot::{
    Artifact, CHUNK_TABLE, Manifest, ManifestEntry, SnapshotError, SnapshotVault, chunk_row,
};
use crate::{clock::UnixMillis, crypto::SealContext, store::SnapshotRow};

/// Bytes per stored chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// A snapshot being written.
#[derive(Debug)]
pub struct SnapshotWriter<'v> {
    vault: &'v SnapshotVault,
    manifest: Manifest,
    total: u64,
}

/// One artifact being written into a [`SnapshotWriter`].
pub struct ArtifactSink<'w, 'v> {
    writer: &'w mut SnapshotWriter<'v>,
    entry: ManifestEntry,
    buffer: Vec<u8>,
    seq: i64,
    hash: digest::Context,
}

impl std::fmt::Debug for ArtifactSink<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactSink")
            .field("entry", &self.entry)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl SnapshotVault {
    /// Starts snapshot `id` of `container` (invisible until finished).
    pub async fn begin(
        &self,
        id: &str,
        container: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<SnapshotWriter<'_>, SnapshotError> {
        self.store()
            .begin_snapshot(&SnapshotRow {
                id: id.to_owned(),
                container: container.to_owned(),
                reason: reason.to_owned(),
                created_at: now.0,
                manifest: String::new(),
                manifest_hmac: Vec::new(),
            })
            .await?;
        Ok(SnapshotWriter {
            vault: self,
            manifest: Manifest {
                snapshot_id: id.to_owned(),
                container: container.to_owned(),
                reason: reason.to_owned(),
                created_at: now.0,
                artifacts: Vec::new(),
                truncated: Vec::new(),
                interrupted: false,
            },
            total: 0,
        })
    }
}

impl<'v> SnapshotWriter<'v> {
    /// Whether the byte bound is reached (later artifacts are not read).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.total >= self.vault.max_bytes()
    }

    /// The snapshot's byte bound (no single read needs more).
    #[must_use]
    pub fn max_file_bytes(&self) -> u64 {
        self.vault.max_bytes()
    }

    /// Names an artifact left out at the bound.
    pub fn skip(&mut self, name: &str) {
        self.manifest.truncated.push(name.to_owned());
    }

    /// Starts artifact `name`, read from `source` at `captured_at`.
    pub fn artifact(
        &mut self,
        name: &str,
        source: &str,
        captured_at: UnixMillis,
    ) -> ArtifactSink<'_, 'v> {
        ArtifactSink {
            writer: self,
            entry: ManifestEntry {
                name: name.to_owned(),
                size: 0,
                sha256: String::new(),
                source: source.to_owned(),
                captured_at: captured_at.0,
                partial: false,
            },
            buffer: Vec::new(),
            seq: 0,
            hash: digest::Context::new(&digest::SHA256),
        }
    }

    /// Writes a whole (small) artifact.
    pub async fn add(&mut self, artifact: Artifact) -> Result<(), SnapshotError> {
        if self.is_full() {
            self.skip(&artifact.name);
            return Ok(());
        }
        let mut sink = self.artifact(&artifact.name, &artifact.source, artifact.captured_at);
        sink.write(&artifact.bytes).await?;
        sink.finish().await
    }

    /// Authenticates and stores the manifest: the snapshot is complete.
    pub async fn finish(self) -> Result<Manifest, SnapshotError> {
        let text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|err| SnapshotError::Manifest(err.to_string()))?;
        let tag = hmac::sign(self.vault.manifest_key(), text.as_bytes());
        self.vault
            .store()
            .complete_snapshot(&self.manifest.snapshot_id, &text, tag.as_ref())
            .await?;
        Ok(self.manifest)
    }
}

impl ArtifactSink<'_, '_> {
    /// Appends `bytes`; false once the snapshot's bound is reached (the
    /// artifact is then partial: stop reading).
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<bool, SnapshotError> {
        let room = self
            .writer
            .vault
            .max_bytes()
            .saturating_sub(self.writer.total);
        let fits = usize::try_from(room).unwrap_or(usize::MAX);
        let within = bytes.len() <= fits;
        if !within {
            bytes = bytes.get(..fits).unwrap_or_default();
            self.entry.partial = true;
        }
        while !bytes.is_empty() {
            let take = bytes.len().min(CHUNK_BYTES - self.buffer.len());
            let (now, later) = bytes.split_at(take);
            self.buffer.extend_from_slice(now);
            self.hash.update(now);
            self.entry.size += take as u64;
            self.writer.total += take as u64;
            bytes = later;
            if self.buffer.len() == CHUNK_BYTES {
                self.flush().await?;
            }
        }
        Ok(within)
    }

    async fn flush(&mut self) -> Result<(), SnapshotError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let id = self.writer.manifest.snapshot_id.clone();
        let row = chunk_row(&id, self.seq);
        let context = SealContext {
            table: CHUNK_TABLE,
            column: &self.entry.name,
            row: &row,
        };
        let sealed = self
            .writer
            .vault
            .sealer()
            .seal(&context, &self.buffer)
            .map_err(|err| SnapshotError::Crypto(err.to_string()))?;
        self.writer
            .vault
            .store()
            .put_snapshot_chunk(&id, &self.entry.name, self.seq, &sealed)
            .await?;
        self.seq += 1;
        self.buffer.clear();
        Ok(())
    }

    /// Stores the rest and lists the artifact in the manifest.
    pub async fn finish(mut self) -> Result<(), SnapshotError> {
        self.flush().await?;
        self.entry.sha256 = hex::encode(self.hash.clone().finish());
        self.writer.manifest.artifacts.push(self.entry);
        Ok(())
    }
}
