//! Tests of `file`: reading and replacing through the folder handle.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::path::Path;

use nix::{
    sys::stat::Mode,
    unistd::{Gid, Uid},
};

use super::*;

fn me() -> Ownership {
    Ownership {
        uid: Uid::effective().as_raw(),
        gid: Gid::effective().as_raw(),
        mode: 0o600,
    }
}

#[test]
fn replacing_keeps_mode_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openclaw.json");
    std::fs::write(&path, "{a: 1}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let file = ConfigFile::open(&path).unwrap();
    assert_eq!(file.read(1024).unwrap().unwrap(), b"{a: 1}");
    assert!(
        file.replace_if(b"{a: 2} // new", me(), Some(b"{a: 1}"))
            .unwrap()
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"{a: 2} // new");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["openclaw.json"]);
    // No file yet: created with the fresh owner and mode.
    let other = ConfigFile::open(&dir.path().join("new.json")).unwrap();
    assert_eq!(other.read(10).unwrap(), None);
    assert!(other.replace_if(b"{}", me(), None).unwrap());
    assert_eq!(
        std::fs::metadata(dir.path().join("new.json"))
            .unwrap()
            .mode()
            & 0o7777,
        0o600
    );
}

#[test]
fn a_symlink_or_fifo_in_its_place_is_refused_unfollowed_and_nothing_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root's").unwrap();
    let path = dir.path().join("openclaw.json");
    std::os::unix::fs::symlink(&secret, &path).unwrap();
    let file = ConfigFile::open(&path).unwrap();
    assert!(matches!(
        file.read(1024),
        Err(ConfigFileError::NotARegularFile {
            what: "a symlink",
            ..
        })
    ));
    assert!(matches!(
        file.replace_if(b"{}", me(), Some(b"root's")),
        Err(ConfigFileError::NotARegularFile {
            what: "a symlink",
            ..
        })
    ));
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        b"root's",
        "the target is untouched"
    );
    std::fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
    assert!(matches!(
        file.read(1024),
        Err(ConfigFileError::NotARegularFile { what: "a FIFO", .. })
    ));
}

#[test]
fn a_file_larger_than_the_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openclaw.json");
    std::fs::write(&path, vec![b' '; 2048]).unwrap();
    let file = ConfigFile::open(&path).unwrap();
    assert!(matches!(
        file.read(1024),
        Err(ConfigFileError::TooLarge { limit: 1024, .. })
    ));
    assert_eq!(file.read(2048).unwrap().unwrap().len(), 2048);
    assert!(matches!(
        ConfigFile::open(Path::new("/")),
        Err(ConfigFileError::BadPath(_))
    ));
}

#[test]
fn a_change_made_meanwhile_is_swapped_back_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openclaw.json");
    std::fs::write(&path, "{a: 1}").unwrap();
    let file = ConfigFile::open(&path).unwrap();
    // The caller read {a: 1}; someone wrote {a: 3} since.
    std::fs::write(&path, "{a: 3}").unwrap();
    assert!(!file.replace_if(b"{a: 2}", me(), Some(b"{a: 1}")).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"{a: 3}");
    // A file that appeared where none was expected is kept too.
    let fresh = ConfigFile::open(&dir.path().join("new.json")).unwrap();
    std::fs::write(dir.path().join("new.json"), "{b: 1}").unwrap();
    assert!(!fresh.replace_if(b"{}", me(), None).unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("new.json")).unwrap(),
        b"{b: 1}"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["new.json", "openclaw.json"],
        "no temporary file is left"
    );
}

#[test]
fn a_hard_link_or_a_symlink_on_the_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("shadow");
    std::fs::write(&elsewhere, "secret").unwrap();
    let path = dir.path().join("openclaw.json");
    std::fs::hard_link(&elsewhere, &path).unwrap();
    let file = ConfigFile::open(&path).unwrap();
    assert!(matches!(
        file.read(1024),
        Err(ConfigFileError::NotARegularFile {
            what: "a file with other hard links",
            ..
        })
    ));
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("openclaw.json"), "{}").unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("linked")).unwrap();
    assert!(matches!(
        ConfigFile::open(&dir.path().join("linked/openclaw.json")),
        Err(ConfigFileError::NotARegularFile {
            what: "reached through a symlink or a non-folder",
            ..
        })
    ));
    // A link further up the path is refused too.
    std::fs::create_dir(real.join("sub")).unwrap();
    std::fs::write(real.join("sub/openclaw.json"), "{}").unwrap();
    assert!(matches!(
        ConfigFile::open(&dir.path().join("linked/sub/openclaw.json")),
        Err(ConfigFileError::NotARegularFile { .. })
    ));
}
