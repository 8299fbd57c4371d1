//! A file system that can be broken under a running daemon: ext4 in a file,
//! loop-mounted by root with `errors=remount-ro`, so that writing to its
//! `trigger_fs_error` (in `/sys/fs/ext4/<device>/`) makes the kernel turn
//! it read-only at once — files held open for writing included — as it does
//! when a disk fails under a real store; or frozen (`fsfreeze`), so that
//! every write and sync to it waits, as when a disk or its controller hangs.
//!
//! Invariant: `mount` returns `None` (the test says it skipped) where this
//! process cannot mount a loop device; a mounted disk never outlives its
//! value (unmounted lazily, its loop device freed, its image removed).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// An ext4 image loop-mounted on a folder.
#[derive(Debug)]
pub struct BreakableDisk {
    at: PathBuf,
    image: PathBuf,
    device: String,
}

fn ran(command: &mut Command) -> bool {
    command.status().is_ok_and(|status| status.success())
}

impl BreakableDisk {
    /// A fresh ext4 of `megabytes` MiB mounted on `at` (created), mode 0700.
    #[must_use]
    pub fn mount(at: &Path, megabytes: u32) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let image = at.with_extension("ext4");
        let made = ran(Command::new("truncate")
            .args(["-s", &format!("{megabytes}M")])
            .arg(&image))
            && ran(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let mounted = made
            && ran(Command::new("mount")
                .args(["-o", "loop,errors=remount-ro"])
                .arg(&image)
                .arg(at));
        if !mounted {
            let _ = std::fs::remove_file(&image);
            return None;
        }
        let source = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(at)
            .output()
            .ok()?;
        let device = String::from_utf8_lossy(&source.stdout)
            .trim()
            .trim_start_matches("/dev/")
            .to_owned();
        let disk = Self {
            at: at.to_owned(),
            image,
            device,
        };
        std::fs::set_permissions(at, std::os::unix::fs::PermissionsExt::from_mode(0o700)).ok()?;
        Some(disk)
    }

    /// Makes the file system read-only now, as a disk error would.
    pub fn break_now(&self) {
        let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device);
        std::fs::write(&trigger, "occc test: the store's disk fails\n")
            .unwrap_or_else(|err| panic!("{trigger}: {err}"));
    }

    /// Freezes the file system: every write to it, and every sync, waits
    /// until the returned guard thaws it (when it drops, a panic included).
    #[must_use]
    pub fn freeze(&self) -> Frozen<'_> {
        assert!(
            ran(Command::new("fsfreeze").arg("--freeze").arg(&self.at)),
            "fsfreeze --freeze {}",
            self.at.display()
        );
        Frozen(self)
    }

    /// Whether the kernel has made it read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        std::fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
            mounts.lines().any(|line| {
                let mut fields = line.split_whitespace();
                let (_, target, _, options) =
                    (fields.next(), fields.next(), fields.next(), fields.next());
                target == self.at.to_str()
                    && options.is_some_and(|o| {
                        o.split(',').any(|opt| opt == "ro" || opt == "emergency_ro")
                    })
            })
        })
    }

    /// Unmounts, checks and repairs the file system (`e2fsck -p`), and
    /// mounts it again writable: what an operator does after the disk is
    /// replaced or the error understood.
    pub fn repair(&self) {
        assert!(
            ran(Command::new("umount").arg(&self.at)),
            "umount {}",
            self.at.display()
        );
        let _ = Command::new("e2fsck")
            .args(["-f", "-p"])
            .arg(&self.image)
            .status();
        assert!(
            ran(Command::new("mount")
                .args(["-o", "loop,errors=remount-ro"])
                .arg(&self.image)
                .arg(&self.at)),
            "mount {} again",
            self.image.display()
        );
    }
}

/// A frozen [`BreakableDisk`]; thawed when dropped.
#[derive(Debug)]
pub struct Frozen<'disk>(&'disk BreakableDisk);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if !ran(Command::new("fsfreeze").arg("--unfreeze").arg(&self.0.at)) {
            let why = format!("fsfreeze --unfreeze {} failed", self.0.at.display());
            if std::thread::panicking() {
                eprintln!("{why}");
            } else {
                panic!("{why}");
            }
        }
    }
}

impl Drop for BreakableDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        let _ = std::fs::remove_file(&self.image);
    }
}
