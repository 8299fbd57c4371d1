//! A small file system for tests of full disks: a tmpfs of a given size,
//! mounted by root, unmounted when dropped.
//!
//! Invariant: `mount` returns `None` (the test says it skipped) where this
//! process cannot mount; a mounted disk never outlives its value.

use std::{path::PathBuf, process::Command};

/// A tmpfs mounted on a folder.
#[derive(Debug)]
pub struct SmallDisk(pub PathBuf);

impl SmallDisk {
    /// A tmpfs of `size` (e.g. `64k`, `8m`) on `at` (created), mode 0700.
    #[must_use]
    pub fn mount(at: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
