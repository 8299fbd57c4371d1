//! Reading the config: the file as one reader sees it, and what an edit
//! would do.
//!
//! Invariant: a view is answered from the last one only if it was redacted
//! (no secret is kept between requests), for the same container, under the
//! same store version (read first: a version written meanwhile changes it),
//! and either — for at most [`RECHECK_AFTER_MS`] after the disk was last
//! read — the file's change mark is the one taken before that read
//! (nothing on the file's way changed since: see
//! [`super::super::file::FileChanges`]), or the file's bytes, read again,
//! carry the same keyed version; otherwise it is computed afresh.

use std::sync::Arc;

use super::{
    super::{
        error::ConfigError,
        file::Mark,
        targets::{read_disk, read_disk_marked},
        view::{ConfigView, EditPreview, Reader},
        write_plan,
    },
    ConfigEditor, checked,
};
use crate::clock::UnixMillis;

/// How long a kept view is answered on the change mark alone before the
/// file is read again: a change inotify does not report (a write through a
/// shared `mmap` or native AIO, a mount over the path, a network or FUSE
/// filesystem changed from elsewhere) shows within this time, not never.
const RECHECK_AFTER_MS: i64 = 1_000;

/// The last redacted view, the change mark taken before its file was last
/// read, and when that read began.
#[derive(Debug, Clone)]
pub(super) struct KeptView {
    view: ConfigView,
    read_at: Option<Mark>,
    checked_at: UnixMillis,
}

impl KeptView {
    /// Whether it may be answered without reading the file, given the mark
    /// and the time now (a clock set back reads the file).
    fn fresh(&self, mark: Option<Mark>, now: UnixMillis) -> bool {
        let age = now.0.saturating_sub(self.checked_at.0);
        let recent = (0..RECHECK_AFTER_MS).contains(&age);
        self.read_at.is_some() && self.read_at == mark && recent
    }
}

impl ConfigEditor {
    /// The file now, redacted unless `reader` may see secrets.
    pub async fn get(&self, container: &str, reader: Reader) -> Result<ConfigView, ConfigError> {
        let target = self.targets.target(container)?.clone();
        let stored = self.store.configs_version();
        let reuse = !reader.may_see_secrets;
        let kept = self
            .last_view
            .get(stored)
            .filter(|kept| reuse && kept.view.redacted && kept.view.container == target.container);
        let checked_at = self.clock.now();
        if let Some(kept) = &kept
            && kept.fresh(self.changes.mark(), checked_at)
        {
            return Ok(kept.view.clone());
        }
        let (disk, read_at) = read_disk_marked(&target, &self.changes).await?;
        if let Some(kept) = kept
            && kept.view.version == self.versioner.of_disk(disk.as_deref())
        {
            let view = kept.view.clone();
            let kept = KeptView {
                view: kept.view,
                read_at,
                checked_at,
            };
            self.last_view.put(stored, kept);
            return Ok(view);
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
            let kept = KeptView {
                view: view.clone(),
                read_at,
                checked_at,
            };
            self.last_view.put(stored, kept);
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

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use crate::openclaw::file::FileChanges;

    fn kept(read_at: Option<Mark>, checked_at: i64) -> KeptView {
        let view = ConfigView {
            container: "openclaw-gateway".to_owned(),
            path: "/srv/openclaw.json".to_owned(),
            exists: true,
            text: "{}".to_owned(),
            redacted: true,
            version: "v1".to_owned(),
            parse_error: None,
            schema_errors: Vec::new(),
            latest_number: 1,
            accepted: true,
        };
        KeptView {
            view,
            read_at,
            checked_at: UnixMillis(checked_at),
        }
    }

    #[test]
    fn a_kept_view_is_fresh_only_under_its_mark_and_for_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, "{}").unwrap();
        let changes = FileChanges::new();
        let mark = changes.watch(&path);
        assert!(mark.is_some());
        let view = kept(mark, 10_000);
        assert!(view.fresh(changes.mark(), UnixMillis(10_000)));
        assert!(view.fresh(changes.mark(), UnixMillis(10_999)));
        // A write through a shared mapping raises no event: the disk is
        // read again a second after the last read all the same.
        assert!(!view.fresh(changes.mark(), UnixMillis(11_000)));
        // The clock set back: read again.
        assert!(!view.fresh(changes.mark(), UnixMillis(9_999)));
        // No mark (no inotify, watches being placed, or none when read).
        assert!(!view.fresh(None, UnixMillis(10_000)));
        assert!(!kept(None, 10_000).fresh(None, UnixMillis(10_000)));
        std::fs::write(&path, "{a: 1}").unwrap();
        assert!(!view.fresh(changes.mark(), UnixMillis(10_000)), "written");
    }
}
