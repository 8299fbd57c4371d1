//! Tests of `writable`: every executable found, nothing hidden too deep,
//! the engine's own writable places included.

use std::os::unix::fs::PermissionsExt;

use bollard::models::ContainerInspectResponse;

use super::*;
use crate::integrity::trees::{Tree, trees_of};

#[test]
fn every_executable_is_found_once_and_unchanged_files_are_not_read_again() {
    let upper = tempfile::tempdir().unwrap();
    let mount = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(upper.path().join("tmp/deep/er")).unwrap();
    let tool = upper.path().join("tmp/deep/er/node");
    std::fs::write(&tool, b"\x7fELF....").unwrap();
    std::fs::write(upper.path().join("tmp/notes.txt"), "hello").unwrap();
    let big = mount.path().join("big.sh");
    std::fs::write(&big, "#!/bin/sh\n".repeat(100)).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o700)).unwrap();
    let trees = [
        Tree::Layer {
            upper: upper.path().to_owned(),
            mount_points: vec!["/home/node/.openclaw".to_owned()],
        },
        Tree::Mount {
            source: mount.path().to_owned(),
            mount: "/home/node/.openclaw".to_owned(),
        },
    ];
    let mut cache = ExamCache::default();
    let protected = ["/tmp".to_owned()];
    let scan1 = scan(&trees, &mut cache, 100, &[], &protected);
    let found: Vec<(&str, &str, bool)> = scan1
        .executables
        .iter()
        .map(|f| (f.path.as_str(), f.by, f.sha256.is_some()))
        .collect();
    assert_eq!(
        found,
        [
            ("/home/node/.openclaw/big.sh", "execute bit", false),
            ("/tmp/deep/er/node", "ELF binary", true),
        ]
    );
    assert!(
        scan1.executables[0]
            .note
            .as_deref()
            .unwrap()
            .contains("larger than")
    );
    assert_eq!(scan1.protected_total, 2, "{:?}", scan1.protected_changes);
    assert_eq!(scan1.unexamined_total, 0, "{:?}", scan1.unexamined);
    // Unchanged files keep their verdict.
    let scan2 = scan(&trees, &mut cache, 100, &[], &protected);
    assert_eq!(scan2.executables, scan1.executables);
    // Exempt paths are not judged.
    let scan3 = scan(
        &trees,
        &mut cache,
        100,
        &["/home/node/.openclaw".to_owned()],
        &protected,
    );
    assert_eq!(scan3.executables.len(), 1);
}

#[test]
fn what_is_hidden_too_deep_is_named_not_skipped() {
    let upper = tempfile::tempdir().unwrap();
    let mut deep = upper.path().join("tmp");
    for _ in 0..=tree_walk::MAX_DEPTH {
        deep.push("a");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("payload"), b"\x7fELF").unwrap();
    let trees = [Tree::Layer {
        upper: upper.path().to_owned(),
        mount_points: Vec::new(),
    }];
    let found = scan(&trees, &mut ExamCache::default(), 100, &[], &[]);
    assert!(found.executables.is_empty());
    assert!(found.hiding);
    assert_eq!(found.unexamined_total, 1, "{:?}", found.unexamined);
    assert!(
        found.unexamined[0].starts_with("/tmp/a/a/"),
        "{:?}",
        found.unexamined
    );
}

#[test]
fn the_engines_dev_and_single_file_mounts_are_writable_trees() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, b"\x7fELF not a hosts file").unwrap();
    let inspect = ContainerInspectResponse {
        hosts_path: Some(hosts.display().to_string()),
        state: Some(bollard::models::ContainerState {
            pid: Some(42),
            ..Default::default()
        }),
        ..Default::default()
    };
    let trees = trees_of(&inspect);
    assert!(trees.contains(&Tree::Tmpfs {
        pid: 42,
        mount: "/dev".to_owned()
    }));
    let file = Tree::File {
        source: hosts.clone(),
        mount: "/etc/hosts".to_owned(),
    };
    assert!(trees.contains(&file), "{trees:?}");
    let found = scan(&[file], &mut ExamCache::default(), 100, &[], &[]);
    assert_eq!(found.executables.len(), 1, "{found:?}");
    assert_eq!(found.executables[0].path, "/etc/hosts");
    assert_eq!(found.executables[0].by, "ELF binary");
}
