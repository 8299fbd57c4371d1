use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::skills::intake::IntakeLimits;

const LIMITS: IntakeLimits = IntakeLimits {
    max_files: 10,
    max_file_bytes: 1024,
    max_total_bytes: 4096,
};

#[test]
fn only_absolute_plain_paths_below_a_root_are_taken() {
    let roots = vec![PathBuf::from("/srv/skills")];
    assert!(check_submission_path("/srv/skills/x", &roots).is_ok());
    for (path, says) in [
        ("srv/skills/x", "absolute"),
        ("/srv/skills/../x", "`..`"),
        ("/srv/skills", "not below"),
        ("/srv/other/x", "not below"),
    ] {
        let err = check_submission_path(path, &roots).unwrap_err().to_string();
        assert!(err.contains(says), "{path}: {err}");
    }
    let off = check_submission_path("/srv/skills/x", &[])
        .unwrap_err()
        .to_string();
    assert!(off.contains("submit_roots"), "{off}");
}

#[test]
fn a_caller_gets_only_what_they_could_read_and_no_links_fifos_or_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let skill = dir.path().join("skill");
    std::fs::create_dir(&skill).unwrap();
    std::fs::set_permissions(&skill, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: a\ndescription: b\n---\n",
    )
    .unwrap();
    std::fs::set_permissions(
        skill.join("SKILL.md"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(read_folder(&skill, 4242, LIMITS).is_ok(), "world-readable");
    std::fs::write(skill.join("secret"), "x").unwrap();
    std::fs::set_permissions(skill.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = read_folder(&skill, 4242, LIMITS).unwrap_err().to_string();
    assert!(
        err.contains("secret: you (uid 4242) cannot read it"),
        "{err}"
    );
    assert!(read_folder(&skill, 0, LIMITS).is_ok(), "root reads all");
    std::fs::remove_file(skill.join("secret")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = read_folder(&skill, 4242, LIMITS).unwrap_err().to_string();
    assert!(err.contains("cannot reach folders below it"), "{err}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::hard_link(skill.join("SKILL.md"), dir.path().join("other")).unwrap();
    let err = read_folder(&skill, 0, LIMITS).unwrap_err().to_string();
    assert!(err.contains("more than one hard link"), "{err}");
    std::fs::remove_file(dir.path().join("other")).unwrap();
    nix::unistd::mkfifo(
        &skill.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let err = read_folder(&skill, 0, LIMITS).unwrap_err().to_string();
    assert!(err.contains("pipe: FIFOs"), "{err}");
    std::fs::remove_file(skill.join("pipe")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", skill.join("link")).unwrap();
    let err = read_folder(&skill, 0, LIMITS).unwrap_err().to_string();
    assert!(err.contains("link: symbolic links"), "{err}");
}
