//! Forensic snapshots: what the engine knows about a container at the time
//! of a compromise, with an authenticated SHA-256 manifest, sealed at rest;
//! listed, verified and exported here, written by `snapshot_writer`.
//!
//! Invariant: every artifact is listed in the manifest with its size, hash,
//! source call and capture time; the manifest is authenticated with an HMAC
//! keyed from the master key; artifacts are sealed (AES-256-GCM) in chunks
//! bound to their snapshot, name and position; only complete snapshots are
//! read, one chunk at a time; a snapshot never exceeds its byte bound (what
//! did not fit is named truncated, what was cut is marked partial); one a
//! stopped daemon left unfinished is completed at the next start from the
//! chunks it stored, and marked interrupted; the list is answered from
//! memory only while no snapshot has been begun or completed since it was
//! read.

use std::sync::Arc;

use ring::{digest, hmac, rand::SecureRandom};
use serde::{Deserialize, Serialize};

use super::engine::EngineError;
use crate::{
    crypto::{SealContext, Sealer, Subkey},
    store::{ReadCopy, Store, StoreError},
};

/// Where whole artifacts were sealed before chunks (schema 0005).
const WHOLE_ARTIFACT_TABLE: &str = "snapshot_artifacts";
/// Where chunks are sealed.
pub(super) const CHUNK_TABLE: &str = "snapshot_chunks";

/// The sealing row of chunk `seq` of snapshot `id`.
pub(super) fn chunk_row(id: &str, seq: i64) -> String {
    format!("{id}/{seq}")
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading from the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or the random generator failed.
    #[error("snapshot sealing failed: {0}")]
    Crypto(String),
    /// No such snapshot.
    #[error("no snapshot with id {0:?}")]
    NotFound(String),
    /// A stored manifest does not parse.
    #[error("snapshot manifest unreadable: {0}")]
    Manifest(String),
}

/// One captured piece of evidence.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// File name in the export, e.g. `inspect.json`.
    pub name: String,
    /// The engine call it came from.
    pub source: String,
    /// When it was captured.
    pub captured_at: crate::clock::UnixMillis,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Artifact name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Source call.
    pub source: String,
    /// Capture time (Unix ms).
    pub captured_at: i64,
    /// Cut at the snapshot's byte bound (or where an interrupted write
    /// stopped).
    #[serde(default)]
    pub partial: bool,
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Id.
    pub snapshot_id: String,
    /// Configured container name.
    pub container: String,
    /// Why it was taken.
    pub reason: String,
    /// When (Unix ms).
    pub created_at: i64,
    /// The artifacts.
    pub artifacts: Vec<ManifestEntry>,
    /// Artifacts left out at the byte bound.
    pub truncated: Vec<String>,
    /// The daemon stopped while writing it; completed at the next start
    /// from what it had stored.
    #[serde(default)]
    pub interrupted: bool,
}

impl Manifest {
    /// Total artifact bytes.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.artifacts.iter().map(|artifact| artifact.size).sum()
    }
}

/// The outcome of verifying a stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The manifest's HMAC holds.
    pub manifest_authentic: bool,
    /// Artifacts that fail to open or whose hash differs.
    pub mismatched: Vec<String>,
}

impl Verification {
    /// Everything holds.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.manifest_authentic && self.mismatched.is_empty()
    }
}

/// Stores, lists, exports and verifies snapshots.
pub struct SnapshotVault {
    store: Store,
    sealer: Arc<Sealer>,
    manifest_key: hmac::Key,
    max_bytes: u64,
    /// The list of complete snapshots, read under a snapshots version:
    /// answered from memory until a snapshot is begun or completed.
    listed: ReadCopy<Vec<Manifest>>,
}

impl std::fmt::Debug for SnapshotVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotVault")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// A complete snapshot's manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Parsed.
    pub manifest: Manifest,
    /// The stored text (the HMAC is over these bytes).
    pub text: String,
    /// The HMAC, hex.
    pub hmac_hex: String,
    /// Whether the HMAC holds.
    pub authentic: bool,
}

/// A new random snapshot id.
pub fn new_snapshot_id() -> Result<String, SnapshotError> {
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SnapshotError::Crypto("random generator failed".to_owned()))?;
    Ok(format!("snap_{}", hex::encode(bytes)))
}

/// The plaintext chunks of one stored artifact, read one at a time.
#[derive(Debug)]
pub struct ArtifactChunks {
    vault: Arc<SnapshotVault>,
    id: String,
    name: String,
    seq: i64,
    done: bool,
}

impl ArtifactChunks {
    /// The next chunk; `None` at the end; an error if one does not open.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, SnapshotError> {
        if self.done {
            return Ok(None);
        }
        let store = &self.vault.store;
        let chunk = store.snapshot_chunk(&self.id, &self.name, self.seq).await?;
        let (sealed, table, row) = match chunk {
            Some(sealed) => (sealed, CHUNK_TABLE, chunk_row(&self.id, self.seq)),
            None if self.seq == 0 => {
                self.done = true;
                match store.whole_snapshot_artifact(&self.id, &self.name).await? {
                    Some(sealed) => (sealed, WHOLE_ARTIFACT_TABLE, self.id.clone()),
                    None => return Ok(None),
                }
            }
            None => {
                self.done = true;
                return Ok(None);
            }
        };
        self.seq += 1;
        let context = SealContext {
            table,
            column: &self.name,
            row: &row,
        };
        let opened = self.vault.sealer.open(&context, &sealed).map_err(|_| {
            SnapshotError::Crypto(format!(
                "artifact {} does not open (chunk {}); run VerifySnapshot",
                self.name,
                self.seq - 1
            ))
        })?;
        Ok(Some(opened.to_vec()))
    }
}

/// Size and SHA-256 of an artifact read to its end, or to the first chunk
/// that does not open (then `complete` is false).
struct Digested {
    size: u64,
    sha256: String,
    complete: bool,
}

async fn digest_of(mut chunks: ArtifactChunks) -> Result<Digested, SnapshotError> {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut size = 0u64;
    let complete = loop {
        match chunks.next().await {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                context.update(&chunk);
            }
            Ok(None) => break true,
            Err(SnapshotError::Crypto(_)) => break false,
            Err(err) => return Err(err),
        }
    };
    Ok(Digested {
        size,
        sha256: hex::encode(context.finish()),
        complete,
    })
}

impl SnapshotVault {
    /// A vault over `store`, sealing with `sealer`, authenticating manifests
    /// with `manifest_key`, bounding snapshots to `max_bytes`.
    #[must_use]
    pub fn new(store: Store, sealer: Arc<Sealer>, manifest_key: &Subkey, max_bytes: u64) -> Self {
        Self {
            store,
            sealer,
            manifest_key: hmac::Key::new(hmac::HMAC_SHA256, manifest_key.expose()),
            max_bytes,
            listed: ReadCopy::default(),
        }
    }

    /// The byte bound.
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub(super) fn manifest_key(&self) -> &hmac::Key {
        &self.manifest_key
    }

    /// Every complete snapshot's manifest, newest first.
    pub async fn list(&self) -> Result<Vec<Manifest>, SnapshotError> {
        // Read the version first: a write that ends after it changes it.
        let version = self.store.snapshots_version();
        if let Some(manifests) = self.listed.get(version) {
            return Ok(manifests);
        }
        let rows = self.store.snapshots().await?;
        let manifests = rows
            .iter()
            .map(|row| parse(&row.manifest))
            .collect::<Result<Vec<_>, _>>()?;
        self.listed.put(version, manifests.clone());
        Ok(manifests)
    }

    /// The manifest of complete snapshot `id`, as stored.
    pub async fn manifest(&self, id: &str) -> Result<StoredManifest, SnapshotError> {
        let row = self
            .store
            .snapshot(id)
            .await?
            .ok_or_else(|| SnapshotError::NotFound(id.to_owned()))?;
        let authentic = hmac::verify(
            &self.manifest_key,
            row.manifest.as_bytes(),
            &row.manifest_hmac,
        )
        .is_ok();
        Ok(StoredManifest {
            manifest: parse(&row.manifest)?,
            hmac_hex: hex::encode(&row.manifest_hmac),
            text: row.manifest,
            authentic,
        })
    }

    /// The chunks of artifact `name` of snapshot `id`.
    #[must_use]
    pub fn chunks(self: &Arc<Self>, id: &str, name: &str) -> ArtifactChunks {
        ArtifactChunks {
            vault: Arc::clone(self),
            id: id.to_owned(),
            name: name.to_owned(),
            seq: 0,
            done: false,
        }
    }

    /// Checks the manifest's HMAC and every artifact against it, reading
    /// one chunk at a time.
    pub async fn verify(self: &Arc<Self>, id: &str) -> Result<Verification, SnapshotError> {
        let StoredManifest {
            manifest,
            authentic: manifest_authentic,
            ..
        } = self.manifest(id).await?;
        let mut mismatched = Vec::new();
        for entry in &manifest.artifacts {
            let digested = digest_of(self.chunks(id, &entry.name)).await?;
            if !digested.complete || digested.size != entry.size || digested.sha256 != entry.sha256
            {
                mismatched.push(entry.name.clone());
            }
        }
        for name in self.store.snapshot_chunk_names(id).await? {
            if !manifest.artifacts.iter().any(|entry| entry.name == name) {
                mismatched.push(name);
            }
        }
        Ok(Verification {
            manifest_authentic,
            mismatched,
        })
    }

    /// Completes the snapshots a stopped daemon left unfinished, from the
    /// chunks they stored (marked interrupted); returns their ids.
    pub async fn recover_interrupted(self: &Arc<Self>) -> Result<Vec<String>, SnapshotError> {
        let mut recovered = Vec::new();
        for row in self.store.writing_snapshots().await? {
            let mut manifest = Manifest {
                snapshot_id: row.id.clone(),
                container: row.container.clone(),
                reason: row.reason.clone(),
                created_at: row.created_at,
                artifacts: Vec::new(),
                truncated: Vec::new(),
                interrupted: true,
            };
            for name in self.store.snapshot_chunk_names(&row.id).await? {
                let digested = digest_of(self.chunks(&row.id, &name)).await?;
                manifest.artifacts.push(ManifestEntry {
                    name,
                    size: digested.size,
                    sha256: digested.sha256,
                    source: "recovered after an interrupted write".to_owned(),
                    captured_at: row.created_at,
                    // The last chunk of each may never have been written.
                    partial: true,
                });
            }
            let text = serde_json::to_string_pretty(&manifest)
                .map_err(|err| SnapshotError::Manifest(err.to_string()))?;
            let tag = hmac::sign(&self.manifest_key, text.as_bytes());
            self.store
                .complete_snapshot(&row.id, &text, tag.as_ref())
                .await?;
            recovered.push(row.id);
        }
        Ok(recovered)
    }
}

fn parse(text: &str) -> Result<Manifest, SnapshotError> {
    serde_json::from_str(text).map_err(|err| SnapshotError::Manifest(err.to_string()))
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
