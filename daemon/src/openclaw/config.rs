//! The `[openclaw]` section of occcd.toml, and where each watched
//! container's `openclaw.json` is (`[[integrity.containers]]
//! openclaw_config`): set by whoever configures occcd, never by a client.
//!
//! Invariant: every config path is absolute and plain (no `.`/`..`), names a
//! file, is no other container's, and is not also a pinned
//! `watched_host_files` entry of any container (occcd's own edits would
//! then look like tampering); versions kept is at least 2 (the
//! latest and one to go back to).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::integrity::config::ContainerProfile;

/// Config editor settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenClawConfig {
    /// Stored versions kept per container; older ones are deleted as new
    /// ones arrive (the latest is never deleted).
    pub versions_kept: u32,
}

impl Default for OpenClawConfig {
    fn default() -> Self {
        Self { versions_kept: 100 }
    }
}

/// One container's config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTarget {
    /// The watched container's name.
    pub container: String,
    /// Its `openclaw.json` on the host.
    pub path: PathBuf,
}

impl OpenClawConfig {
    /// The config file of every container that has one.
    #[must_use]
    pub fn targets(containers: &[ContainerProfile]) -> Vec<ConfigTarget> {
        containers
            .iter()
            .filter_map(|profile| {
                profile.openclaw_config.as_ref().map(|path| ConfigTarget {
                    container: profile.name.clone(),
                    path: path.clone(),
                })
            })
            .collect()
    }

    /// Checks the section and every container's config path.
    pub fn validate(&self, containers: &[ContainerProfile]) -> Result<(), String> {
        if self.versions_kept < 2 {
            return Err("openclaw.versions_kept must be at least 2".to_owned());
        }
        for profile in containers {
            let Some(path) = &profile.openclaw_config else {
                continue;
            };
            if !crate::skills::install::plain_absolute(path) || path.file_name().is_none() {
                return Err(format!(
                    "integrity.containers ({}): openclaw_config {} must be an absolute path to a file, without `.` or `..`",
                    profile.name,
                    path.display()
                ));
            }
            let elsewhere = containers.iter().filter(|other| other.name != profile.name);
            if elsewhere
                .clone()
                .any(|other| other.openclaw_config.as_ref() == Some(path))
            {
                return Err(format!(
                    "integrity.containers ({}): {} is also another container's openclaw_config; each file has one owner (one lock, one history)",
                    profile.name,
                    path.display()
                ));
            }
            if containers
                .iter()
                .any(|other| other.watched_host_files.contains(path))
            {
                return Err(format!(
                    "integrity.containers ({}): {} is both openclaw_config and a watched_host_files entry; list it once, as openclaw_config (occcd's own edits move its baseline)",
                    profile.name,
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config(path: &str) -> ContainerProfile {
        ContainerProfile {
            openclaw_config: Some(PathBuf::from(path)),
            ..ContainerProfile::default()
        }
    }

    #[test]
    fn paths_must_be_plain_absolute_files_and_not_pinned_twice() {
        let section = OpenClawConfig::default();
        assert!(
            section
                .validate(&[with_config("/home/oc/.openclaw/openclaw.json")])
                .is_ok()
        );
        for bad in ["openclaw.json", "/home/../etc/openclaw.json", "/"] {
            assert!(section.validate(&[with_config(bad)]).is_err(), "{bad}");
        }
        let mut twice = with_config("/srv/openclaw.json");
        twice
            .watched_host_files
            .push(PathBuf::from("/srv/openclaw.json"));
        let refused = section.validate(&[twice]).unwrap_err();
        assert!(refused.contains("list it once"), "{refused}");
        let mut other = with_config("/srv/openclaw.json");
        other.name = "second".to_owned();
        let refused = section
            .validate(&[with_config("/srv/openclaw.json"), other])
            .unwrap_err();
        assert!(refused.contains("another container's"), "{refused}");
        let too_few = OpenClawConfig { versions_kept: 1 };
        assert!(too_few.validate(&[]).is_err());
    }
}
