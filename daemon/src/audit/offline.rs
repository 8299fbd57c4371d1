//! Appending to the audit log from a tool that holds the store alone
//! (`occcd restore`, `occcd rekey`: the daemon stopped).
//!
//! Invariant: the entry goes through the same writer and chain as the
//! daemon's, and a checkpoint is signed right after it, so verifiers
//! outside see it as soon as the daemon serves again.

use std::{sync::Arc, time::Duration};

use super::{
    Actor, AuditError, AuditEvent, AuditLog, ChainHasher,
    checkpoint::{CheckpointSigner, checkpoint_head},
};
use crate::{clock::Clock, metrics::Metrics, store::Store};

/// Appends `entry` (by the daemon itself) to `store`'s chain and signs a
/// checkpoint after it.
pub async fn append_offline(
    store: &Store,
    hasher: &Arc<ChainHasher>,
    signer: &CheckpointSigner,
    clock: Arc<dyn Clock>,
    entry: AuditEvent,
) -> Result<(), AuditError> {
    let (audit, writer) = AuditLog::start(
        store.clone(),
        Arc::clone(hasher),
        Arc::clone(&clock),
        Duration::from_secs(30),
        8,
        Arc::new(Metrics::default()),
    )
    .await?;
    let recorded = audit.record(Actor::daemon(), entry).await;
    writer.finish().await;
    recorded?;
    checkpoint_head(store, signer, clock.as_ref()).await?;
    Ok(())
}
