//! Tests of `changes`: every way a read of the file could come out
//! different moves the mark; other files in the same folders do not.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use super::*;

/// A config at `<tmp>/home/openclaw/openclaw.json`, watched; its mark.
fn watched(changes: &FileChanges) -> (tempfile::TempDir, PathBuf, Mark) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("home/openclaw");
    fs::create_dir_all(&folder).unwrap();
    let path = folder.join("openclaw.json");
    fs::write(&path, "{a: 1}").unwrap();
    let mark = changes.watch(&path).unwrap();
    assert_eq!(changes.mark(), Some(mark), "nothing changed yet");
    (dir, path, mark)
}

/// After `change`, the mark is no longer `before`, and watching the path
/// again gives a mark that holds (none when its folder is gone).
fn moves_the_mark(what: &str, change: impl FnOnce(&Path)) {
    let changes = FileChanges::new();
    let (_dir, path, before) = watched(&changes);
    change(&path);
    let after = changes.mark();
    assert!(after.is_some(), "{what}: still watching");
    assert_ne!(after, Some(before), "{what}: the mark must move");
    if folder(&path).exists() {
        let again = changes.watch(&path).unwrap();
        assert_eq!(
            changes.mark(),
            Some(again),
            "{what}: watched again, it holds"
        );
    } else {
        // No folder: the read fails, and nothing is marked to keep it.
        assert_eq!(changes.watch(&path), None, "{what}: no way to watch");
    }
}

fn folder(path: &Path) -> &Path {
    path.parent().unwrap()
}

#[test]
fn a_write_of_the_same_size_moves_the_mark() {
    moves_the_mark("write", |path| fs::write(path, "{a: 2}").unwrap());
}

#[test]
fn a_write_through_a_descriptor_opened_before_moves_the_mark() {
    let changes = FileChanges::new();
    let (_dir, path, before) = watched(&changes);
    let mut open = OpenOptions::new().write(true).open(&path).unwrap();
    assert_eq!(changes.mark(), Some(before), "opening changes nothing");
    open.write_all(b"{b").unwrap();
    assert_ne!(changes.mark(), Some(before));
}

#[test]
fn truncation_and_mode_changes_move_the_mark() {
    moves_the_mark("truncate", |path| {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(1)
            .unwrap();
    });
    moves_the_mark("chmod", |path| {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    });
}

#[test]
fn a_hard_link_made_elsewhere_moves_the_mark() {
    // A second link makes the read refuse the file: the copy must go.
    let elsewhere = tempfile::tempdir().unwrap();
    moves_the_mark("link", |path| {
        fs::hard_link(path, elsewhere.path().join("other")).unwrap();
    });
}

#[test]
fn a_file_renamed_over_it_or_removed_or_created_moves_the_mark() {
    moves_the_mark("rename over", |path| {
        let beside = folder(path).join("openclaw.json.new");
        fs::write(&beside, "{a: 1}").unwrap();
        fs::rename(&beside, path).unwrap();
    });
    moves_the_mark("remove", |path| fs::remove_file(path).unwrap());
    let changes = FileChanges::new();
    let (_dir, path, _) = watched(&changes);
    fs::remove_file(&path).unwrap();
    let absent = changes.watch(&path).unwrap();
    fs::write(&path, "{}").unwrap();
    assert_ne!(changes.mark(), Some(absent), "created");
}

#[test]
fn a_folder_on_the_way_replaced_moves_the_mark() {
    moves_the_mark("folder", |path| {
        let folder = folder(path);
        fs::rename(folder, folder.with_file_name("moved")).unwrap();
        fs::create_dir(folder).unwrap();
        fs::write(path, "{a: 1}").unwrap();
    });
    moves_the_mark("grandparent", |path| {
        let home = folder(folder(path));
        fs::rename(home, home.with_file_name("old-home")).unwrap();
    });
}

#[test]
fn other_files_in_the_same_folders_do_not_move_the_mark() {
    let changes = FileChanges::new();
    let (_dir, path, before) = watched(&changes);
    let folder = folder(&path);
    fs::write(folder.join("sessions.json"), "busy").unwrap();
    fs::rename(folder.join("sessions.json"), folder.join("old.json")).unwrap();
    fs::write(folder.parent().unwrap().join("log"), "busy").unwrap();
    fs::create_dir(folder.join("sub")).unwrap();
    assert_eq!(changes.mark(), Some(before));
}

#[test]
fn two_configs_sharing_folders_are_each_watched() {
    let changes = FileChanges::new();
    let (_dir, first, _) = watched(&changes);
    let second = folder(folder(&first)).join("second.json");
    fs::write(&second, "{}").unwrap();
    changes.watch(&second).unwrap();
    let both = changes.watch(&first).unwrap();
    fs::write(&second, "{b: 1}").unwrap();
    let after_second = changes.mark().unwrap();
    assert_ne!(after_second, both, "the second config's write");
    fs::write(&first, "{b: 1}").unwrap();
    assert_ne!(
        changes.mark(),
        Some(after_second),
        "the first config's write"
    );
}

#[test]
fn a_watch_no_longer_on_the_way_is_removed() {
    let changes = FileChanges::new();
    let (_dir, path, _) = watched(&changes);
    let old = folder(&path).with_file_name("old");
    fs::rename(folder(&path), &old).unwrap();
    fs::create_dir(folder(&path)).unwrap();
    fs::write(&path, "{}").unwrap();
    let mark = changes.watch(&path).unwrap();
    // The file moved away with its folder is no longer the config.
    fs::write(old.join("openclaw.json"), "{c: 3}").unwrap();
    assert_eq!(changes.mark(), Some(mark));
}

#[test]
fn a_relative_path_is_never_marked() {
    let changes = FileChanges::new();
    assert_eq!(changes.watch(Path::new("openclaw.json")), None);
}

#[test]
fn a_flood_of_events_elsewhere_moves_the_mark_rather_than_reading_on() {
    // Alternating names, so the kernel merges none: past the queue's 16,384
    // events (overflow) and past what one drain reads.
    let changes = FileChanges::new();
    let (_dir, path, before) = watched(&changes);
    let folder = folder(&path);
    for i in 0..8_000 {
        fs::write(folder.join(format!("busy-{}", i % 2)), "x").unwrap();
    }
    assert_ne!(
        changes.mark(),
        Some(before),
        "unread events are counted as a change"
    );
    let mut settled = changes.mark();
    for _ in 0..100 {
        let next = changes.mark();
        if next == settled {
            break;
        }
        settled = next;
    }
    assert_eq!(changes.mark(), settled, "once read, the mark holds again");
}
