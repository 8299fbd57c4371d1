//! Reading the config: the file as one reader sees it, and what an edit
//! would do.
//!
//! Invariant: a view is answered from the last one only if it was redacted
//! (no secret is kept between requests), for the same container, under the
//! same store version (read first: a version written meanwhile changes it),
//! and the file's bytes still carry the same keyed version — otherwise it is
//! computed afresh.

use std::sync::Arc;

use super::{
    super::{
        error::ConfigError,
        targets::read_disk,
        view::{ConfigView, EditPreview, Reader},
        write_plan,
    },
    ConfigEditor, checked,
};

impl ConfigEditor {
    /// The file now, redacted unless `reader` may see secrets.
    pub async fn get(&self, container: &str, reader: Reader) -> Result<ConfigView, ConfigError> {
        let target = self.targets.target(container)?.clone();
        let stored = self.store.configs_version();
        let disk = read_disk(&target).await?;
        let reuse = !reader.may_see_secrets;
        if reuse {
            let version = self.versioner.of_disk(disk.as_deref());
            let same = |view: &ConfigView| {
                view.redacted && view.container == target.container && view.version == version
            };
            if let Some(view) = self.last_view.get(stored).filter(same) {
                return Ok(view);
            }
        }
        let latest = self.store.latest_config_version(&target.container).await?;
        let versioner = Arc::clone(&self.versioner);
        let view = self
            .compute(move || {
                Ok(ConfigView::of(
                    &target,
                    disk.as_deref(),
                    latest.as_ref(),
                    &versioner,
                    reader,
                ))
            })
            .await?;
        if reuse {
            self.last_view.put(stored, view.clone());
        }
        Ok(view)
    }

    /// What writing `text` would do, without writing.
    pub async fn preview(
        &self,
        container: &str,
        text: String,
        reader: Reader,
    ) -> Result<EditPreview, ConfigError> {
        let target = self.targets.target(container)?;
        let disk = read_disk(target).await?;
        let accepted = self.history.accepted(target).await?;
        let versioner = Arc::clone(&self.versioner);
        self.compute(move || {
            let parsed = checked(&text)?;
            Ok(write_plan::preview(
                &versioner,
                disk.as_deref(),
                accepted.as_ref(),
                &text,
                &parsed,
                reader,
            ))
        })
        .await
    }
}
