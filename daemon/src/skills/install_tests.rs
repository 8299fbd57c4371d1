use std::os::unix::{ffi::OsStrExt, fs::PermissionsExt};

use std::os::fd::OwnedFd;

use super::*;
use crate::{integrity::host_fs::open_dir, skills::tree::SkillTree};

fn open(path: &Path) -> OwnedFd {
    open_dir(path).unwrap()
}

#[test]
fn removal_takes_a_tree_with_odd_names_and_stops_at_the_depth_bound() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("doomed");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    std::fs::write(tree.join("a/b/c/f"), "x").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"not-\xff-utf8");
    std::fs::write(tree.join("a").join(odd), "x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("a/link")).unwrap();
    remove_tree_at(&open(dir.path()), "doomed").unwrap();
    assert!(!tree.exists());
    assert!(
        Path::new("/etc/passwd").exists(),
        "a link is removed, never followed"
    );

    let mut deep = dir.path().join("deep");
    for _ in 0..70 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let top = dir.path().join("deep");
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_root = nix::unistd::geteuid().is_root();
    if as_root {
        // The OpenClaw user's, as a tree it made would be.
        nix::unistd::chown(&top, Some(65534.into()), Some(65534.into())).unwrap();
    }
    let err = remove_tree_at(&open(dir.path()), "deep")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested deeper than 64"), "{err}");
    // Each folder was taken before it was emptied: what the depth bound
    // left is 0700 (and root's, when run as root), so nobody else could
    // add to it meanwhile.
    let taken = std::fs::metadata(&top).unwrap();
    assert_eq!(taken.permissions().mode() & 0o777, 0o700);
    if as_root {
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&taken), 0);
    }
    assert!(remove_tree_at(&open(dir.path()), "absent").is_ok());
}

#[test]
fn an_install_never_replaces_what_appeared_and_sets_owner_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let target = InstallTarget {
        folder: dir.path().to_path_buf(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    let tree = SkillTree::new(vec![
        crate::skills::tree::SkillFile {
            path: "SKILL.md".into(),
            executable: false,
            contents: b"a".to_vec(),
        },
        crate::skills::tree::SkillFile {
            path: "bin/run".into(),
            executable: true,
            contents: b"b".to_vec(),
        },
    ]);
    assert_eq!(target.occupant("s").unwrap(), Occupant::Free);
    target.install("s", &tree, false).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        (mode("s"), mode("s/SKILL.md"), mode("s/bin/run")),
        (0o755, 0o644, 0o755)
    );
    // Without `replace`, something already there stays.
    let err = target.install("s", &tree, false).unwrap_err().to_string();
    assert!(err.contains("placing s"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("s/SKILL.md")).unwrap(), b"a");
    // With it, the new version is swapped in and the old one is gone.
    let newer = SkillTree::new(vec![crate::skills::tree::SkillFile {
        path: "SKILL.md".into(),
        executable: false,
        contents: b"c".to_vec(),
    }]);
    target.install("s", &newer, true).unwrap();
    assert_eq!(std::fs::read(dir.path().join("s/SKILL.md")).unwrap(), b"c");
    assert!(!dir.path().join(".occcd-staging-s").exists());
    target.uninstall("s").unwrap();
    assert_eq!(target.occupant("s").unwrap(), Occupant::Free);
}

#[test]
fn what_an_interrupted_install_or_removal_left_is_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let target = InstallTarget {
        folder: dir.path().to_path_buf(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    for folder in [
        ".occcd-staging-notes/sub",
        ".occcd-removing-old",
        "notes",
        ".hidden",
    ] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    std::fs::write(
        dir.path().join(".occcd-staging-notes/SKILL.md"),
        "half a sk",
    )
    .unwrap();
    let mut removed = target.remove_leftovers().unwrap();
    removed.sort();
    assert_eq!(removed, [".occcd-removing-old", ".occcd-staging-notes"]);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".hidden", "notes"]);
    assert!(target.remove_leftovers().unwrap().is_empty());
}

/// A link planted where the skill goes, or in place of the skills folder
/// itself, is never followed: what the link points to is untouched.
#[test]
fn a_link_planted_in_the_skills_folder_or_as_it_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep"), "mine").unwrap();
    let skills = dir.path().join("skills");
    std::fs::create_dir(&skills).unwrap();
    let tree = SkillTree::new(vec![crate::skills::tree::SkillFile {
        path: "SKILL.md".into(),
        executable: false,
        contents: b"a".to_vec(),
    }]);
    let target = |folder: &Path| InstallTarget {
        folder: folder.to_path_buf(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    let untouched = || {
        let names: Vec<_> = std::fs::read_dir(&elsewhere)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep"], "nothing written through the link");
        assert_eq!(std::fs::read(elsewhere.join("keep")).unwrap(), b"mine");
    };

    // A link under the skill's name.
    std::os::unix::fs::symlink(&elsewhere, skills.join("s")).unwrap();
    let inside = target(&skills);
    assert_ne!(inside.occupant("s").unwrap(), Occupant::Free);
    assert!(inside.install("s", &tree, false).is_err());
    untouched();
    assert!(
        std::fs::symlink_metadata(skills.join("s"))
            .unwrap()
            .is_symlink()
    );
    // Replacing (which approval asks for only over occcd's own install, a
    // folder that reads back as the recorded version — never a link) swaps
    // the link itself out, never what it points to.
    inside.install("s", &tree, true).unwrap();
    untouched();
    assert!(
        std::fs::symlink_metadata(skills.join("s"))
            .unwrap()
            .is_dir()
    );

    // The skills folder itself a link.
    let linked = dir.path().join("linked-skills");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    assert!(target(&linked).install("t", &tree, false).is_err());
    untouched();
}
