//! Reading the stored versions of a config: listing, one version's text,
//! the diff between two, and the one last accepted.
//!
//! Invariant: read-only; a text leaves redacted unless its reader may see
//! secrets; listings read no text, and the last listing is answered again
//! only while the store's config version it was read under holds.

use std::sync::Arc;

use super::{
    config::ConfigTarget,
    diff,
    error::ConfigError,
    targets::{ConfigTargets, blocking, read_disk},
    versions::{self, VersionSummary, shown_text},
    view::Reader,
};
use crate::{
    crypto::Sealer,
    store::{ConfigVersionRow, ReadCopy, Store},
};

/// A listing asked for: container, below, limit.
type ListingQuery = (String, i64, u32);

/// Most versions one listing returns.
pub const MAX_VERSIONS_LISTED: u32 = 500;

/// The newest stored version of a config, opened.
#[derive(Debug, Clone)]
pub struct AcceptedText {
    /// Its row (number, version, …).
    pub row: ConfigVersionRow,
    /// Its text's bytes.
    pub bytes: Vec<u8>,
}

/// The stored versions of every config.
#[derive(Debug)]
pub struct ConfigHistory {
    store: Store,
    sealer: Arc<Sealer>,
    targets: Arc<ConfigTargets>,
    /// The last listing and what it answered (a frontend polls the newest).
    last_listing: ReadCopy<(ListingQuery, Vec<VersionSummary>)>,
}

impl ConfigHistory {
    /// The history in `store`, opened with `sealer`.
    #[must_use]
    pub fn new(store: Store, sealer: Arc<Sealer>, targets: Arc<ConfigTargets>) -> Self {
        Self {
            store,
            sealer,
            targets,
            last_listing: ReadCopy::default(),
        }
    }

    pub(super) async fn stored(
        &self,
        target: &ConfigTarget,
        number: i64,
    ) -> Result<ConfigVersionRow, ConfigError> {
        self.store
            .config_version(&target.container, number)
            .await?
            .ok_or_else(|| ConfigError::NoVersion {
                container: target.container.clone(),
                number,
            })
    }

    /// Stored versions numbered below `below` (0: from the newest), newest
    /// first, at most `limit`.
    pub async fn versions(
        &self,
        container: &str,
        below: i64,
        limit: u32,
    ) -> Result<Vec<VersionSummary>, ConfigError> {
        let target = self.targets.target(container)?;
        let below = if below <= 0 { i64::MAX } else { below };
        let query = (
            target.container.clone(),
            below,
            limit.clamp(1, MAX_VERSIONS_LISTED),
        );
        // Read the version first: a write that ends after it changes it.
        let stored = self.store.configs_version();
        if let Some((_, listing)) = self
            .last_listing
            .get(stored)
            .filter(|(asked, _)| *asked == query)
        {
            return Ok(listing);
        }
        let rows = self
            .store
            .config_versions(&query.0, query.1, query.2)
            .await?;
        let listing: Vec<VersionSummary> = rows.into_iter().map(versions::summary).collect();
        self.last_listing.put(stored, (query, listing.clone()));
        Ok(listing)
    }

    /// Stored version `number` and its text (redacted unless `reader` may
    /// see secrets).
    pub async fn version(
        &self,
        container: &str,
        number: i64,
        reader: Reader,
    ) -> Result<(VersionSummary, String), ConfigError> {
        let target = self.targets.target(container)?;
        let row = self.stored(target, number).await?;
        let text = shown_text(&versions::open(&self.sealer, &row)?);
        let shown = blocking(move || Ok(reader.shown(&text))).await?;
        Ok((versions::summary(row), shown))
    }

    /// The unified diff from version `from` to version `to` (0: the file on
    /// disk now), redacted unless `reader` may see secrets.
    pub async fn diff(
        &self,
        container: &str,
        from: i64,
        to: i64,
        reader: Reader,
    ) -> Result<String, ConfigError> {
        let target = self.targets.target(container)?;
        let (old, old_label) = self.text_at(target, from).await?;
        let (new, new_label) = self.text_at(target, to).await?;
        // Redacting and diffing up to 1 MiB: off the async threads.
        blocking(move || {
            Ok(diff::unified(
                &reader.shown(&old),
                &reader.shown(&new),
                &old_label,
                &new_label,
            ))
        })
        .await
    }

    async fn text_at(
        &self,
        target: &ConfigTarget,
        number: i64,
    ) -> Result<(String, String), ConfigError> {
        if number == 0 {
            let disk = read_disk(target).await?;
            return Ok((
                disk.as_deref().map(shown_text).unwrap_or_default(),
                "on disk".to_owned(),
            ));
        }
        let row = self.stored(target, number).await?;
        Ok((
            shown_text(&versions::open(&self.sealer, &row)?),
            format!("version {number}"),
        ))
    }

    /// The version last accepted for `target` (the newest stored), if any.
    pub(super) async fn accepted(
        &self,
        target: &ConfigTarget,
    ) -> Result<Option<AcceptedText>, ConfigError> {
        let Some(row) = self.store.latest_config_version(&target.container).await? else {
            return Ok(None);
        };
        Ok(Some(AcceptedText {
            bytes: versions::open(&self.sealer, &row)?,
            row,
        }))
    }
}
