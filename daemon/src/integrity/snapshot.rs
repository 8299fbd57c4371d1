//! Forensic snapshots: what the engine knows about a container at the time
//! of a compromise, with an authenticated SHA-256 manifest, sealed at rest.
//!
//! Invariant: every artifact is listed in the manifest with its size, hash,
//! source call and capture time; the manifest is authenticated with an HMAC
//! keyed from the master key; artifacts are sealed (AES-256-GCM) bound to
//! their snapshot and name; a snapshot is stored whole or not at all and
//! never exceeds its byte bound (what did not fit is named as truncated).

use std::sync::Arc;

use ring::{digest, hmac, rand::SecureRandom};
use serde::{Deserialize, Serialize};

use super::engine::EngineError;
use crate::{
    clock::UnixMillis,
    crypto::{SealContext, Sealer, Subkey},
    store::{SnapshotRow, Store, StoreError},
};

/// Where artifacts are sealed.
const ARTIFACT_TABLE: &str = "snapshot_artifacts";

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
    pub captured_at: UnixMillis,
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
}

impl std::fmt::Debug for SnapshotVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotVault")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// A new random snapshot id.
pub fn new_snapshot_id() -> Result<String, SnapshotError> {
    let mut bytes = [0u8; 12];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SnapshotError::Crypto("random generator failed".to_owned()))?;
    Ok(format!("snap_{}", hex::encode(bytes)))
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
        }
    }

    /// The byte bound.
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Seals and stores `artifacts` as snapshot `id`, in order, up to the
    /// byte bound; returns the manifest.
    pub async fn store(
        &self,
        id: &str,
        container: &str,
        reason: &str,
        artifacts: Vec<Artifact>,
        now: UnixMillis,
    ) -> Result<Manifest, SnapshotError> {
        let mut manifest = Manifest {
            snapshot_id: id.to_owned(),
            container: container.to_owned(),
            reason: reason.to_owned(),
            created_at: now.0,
            artifacts: Vec::new(),
            truncated: Vec::new(),
        };
        let mut sealed = Vec::new();
        let mut total = 0u64;
        for artifact in artifacts {
            let size = artifact.bytes.len() as u64;
            if total + size > self.max_bytes {
                manifest.truncated.push(artifact.name);
                continue;
            }
            total += size;
            let context = SealContext {
                table: ARTIFACT_TABLE,
                column: &artifact.name,
                row: id,
            };
            let bytes = self
                .sealer
                .seal(&context, &artifact.bytes)
                .map_err(|err| SnapshotError::Crypto(err.to_string()))?;
            manifest.artifacts.push(ManifestEntry {
                sha256: sha256_hex(&artifact.bytes),
                size,
                source: artifact.source,
                captured_at: artifact.captured_at.0,
                name: artifact.name.clone(),
            });
            sealed.push((artifact.name, bytes));
        }
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|err| SnapshotError::Manifest(err.to_string()))?;
        let tag = hmac::sign(&self.manifest_key, text.as_bytes());
        let row = SnapshotRow {
            id: id.to_owned(),
            container: container.to_owned(),
            reason: reason.to_owned(),
            created_at: now.0,
            manifest: text,
            manifest_hmac: tag.as_ref().to_vec(),
        };
        self.store.save_snapshot(&row, &sealed).await?;
        Ok(manifest)
    }

    /// Every snapshot's manifest, newest first.
    pub async fn list(&self) -> Result<Vec<Manifest>, SnapshotError> {
        let rows = self.store.snapshots().await?;
        rows.iter().map(|row| parse(&row.manifest)).collect()
    }

    async fn load(&self, id: &str) -> Result<(SnapshotRow, Manifest), SnapshotError> {
        let row = self
            .store
            .snapshot(id)
            .await?
            .ok_or_else(|| SnapshotError::NotFound(id.to_owned()))?;
        let manifest = parse(&row.manifest)?;
        Ok((row, manifest))
    }

    /// Opens every artifact: (name, plaintext or `None` if it fails to open).
    async fn open_artifacts(
        &self,
        id: &str,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, SnapshotError> {
        let sealed = self.store.snapshot_artifacts(id).await?;
        Ok(sealed
            .into_iter()
            .map(|(name, bytes)| {
                let context = SealContext {
                    table: ARTIFACT_TABLE,
                    column: &name,
                    row: id,
                };
                let opened = self
                    .sealer
                    .open(&context, &bytes)
                    .ok()
                    .map(|plain| plain.to_vec());
                (name, opened)
            })
            .collect())
    }

    /// Checks the manifest's HMAC and every artifact against it.
    pub async fn verify(&self, id: &str) -> Result<Verification, SnapshotError> {
        let (row, manifest) = self.load(id).await?;
        let manifest_authentic = hmac::verify(
            &self.manifest_key,
            row.manifest.as_bytes(),
            &row.manifest_hmac,
        )
        .is_ok();
        let opened = self.open_artifacts(id).await?;
        let mut mismatched = Vec::new();
        for entry in &manifest.artifacts {
            let holds = opened.iter().any(|(name, bytes)| {
                name == &entry.name
                    && bytes.as_ref().is_some_and(|bytes| {
                        bytes.len() as u64 == entry.size && sha256_hex(bytes) == entry.sha256
                    })
            });
            if !holds {
                mismatched.push(entry.name.clone());
            }
        }
        for (name, _) in &opened {
            if !manifest.artifacts.iter().any(|entry| &entry.name == name) {
                mismatched.push(name.clone());
            }
        }
        Ok(Verification {
            manifest_authentic,
            mismatched,
        })
    }

    /// The snapshot as a tar archive: `manifest.json`, `manifest.hmac`
    /// (hex), then `artifacts/<name>`.
    pub async fn export(&self, id: &str) -> Result<Vec<u8>, SnapshotError> {
        let (row, _) = self.load(id).await?;
        let mut entries = vec![
            ("manifest.json".to_owned(), row.manifest.into_bytes()),
            (
                "manifest.hmac".to_owned(),
                hex::encode(&row.manifest_hmac).into_bytes(),
            ),
        ];
        for (name, bytes) in self.open_artifacts(id).await? {
            let bytes = bytes.ok_or_else(|| {
                SnapshotError::Crypto(format!("artifact {name} does not open; run VerifySnapshot"))
            })?;
            entries.push((format!("artifacts/{name}"), bytes));
        }
        let mut builder = tokio_tar::Builder::new(Vec::new());
        for (name, bytes) in entries {
            let mut header = tokio_tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(u64::try_from(row.created_at / 1000).unwrap_or(0));
            builder
                .append_data(&mut header, &name, bytes.as_slice())
                .await
                .map_err(|err| SnapshotError::Manifest(format!("building the export: {err}")))?;
        }
        builder
            .into_inner()
            .await
            .map_err(|err| SnapshotError::Manifest(format!("building the export: {err}")))
    }
}

fn parse(text: &str) -> Result<Manifest, SnapshotError> {
    serde_json::from_str(text).map_err(|err| SnapshotError::Manifest(err.to_string()))
}
