//! The file written safely: a symlink or FIFO swapped in is refused
//! unfollowed, a full disk leaves the original, kill -9 never tears it.

use std::time::Duration;

use occc_tests::{
    DevDir, RunningDaemon, people::signed_in_super_admin, skip, small_disk::SmallDisk,
};
use tonic::Code;

use super::{SAMPLE, config_toml, read, write};

#[tokio::test]
async fn a_symlink_or_fifo_swapped_in_is_refused_unfollowed_and_nothing_blocks() {
    let (dir, path, _daemon, root) = super::editing(SAMPLE).await;
    let version = read(&root.session).await.version.clone();

    let secret = dir.path().join("root-only");
    std::fs::write(&secret, "root:$6$salt$hash:19000:0:99999:7:::\n").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&secret, &path).unwrap();
    let refused = root
        .session
        .config()
        .get_config(occc_client::proto::GetConfigRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("a symlink"),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains("root:$6$"));
    let over = write(&root.session, &version, "{}", "replace")
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root:$6$salt$hash:19000:0:99999:7:::\n",
        "the link's target is untouched"
    );
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    std::fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = tokio::time::timeout(
        Duration::from_secs(5),
        root.session
            .config()
            .get_config(occc_client::proto::GetConfigRequest::default()),
    )
    .await
    .expect("a FIFO never blocks the read")
    .unwrap_err();
    assert!(fifo.message().contains("a FIFO"), "{}", fifo.message());
}

#[tokio::test]
async fn a_full_disk_mid_write_leaves_the_original_and_the_next_write_works() {
    let test = "a_full_disk_mid_write_leaves_the_original_and_the_next_write_works";
    let dir = DevDir::new();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "64k") else {
        return skip::unavailable(test, "root, to mount a small tmpfs");
    };
    let path = disk.0.join("openclaw.json");
    // 40 KiB: a second copy beside it does not fit in 64 KiB.
    let padding = |c: char| {
        format!(
            "  meta: {{ note: \"{}\" }},\n",
            c.to_string().repeat(40 * 1024)
        )
    };
    let original = format!("{{\n{}}}\n", padding('a'));
    std::fs::write(&path, &original).unwrap();
    dir.set_config(&config_toml(&path, ""));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let original_version = read(&root.session).await.version.clone();

    let bigger = format!("{{\n{}}}\n", padding('b'));
    let full = write(&root.session, &original_version, &bigger, "fill")
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted, "{}", full.message());
    assert!(
        full.message().contains("the old file is unchanged"),
        "{}",
        full.message()
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    let names: Vec<_> = std::fs::read_dir(&disk.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["openclaw.json"], "no temporary file is left");

    // Space for it: the next write goes through.
    let small = "{ gateway: { port: 18790 } }\n";
    let written = write(&root.session, &original_version, small, "smaller")
        .await
        .unwrap();
    assert_eq!(written.stored.unwrap().number, 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), small);
    drop(daemon);
}

#[tokio::test]
async fn kill_9_during_writes_leaves_the_old_file_or_the_new_one_never_a_torn_one() {
    // 1 MiB texts take long enough to parse, hash, seal and write that
    // kills spread over 0–180 ms land in every stage.
    let old = format!(
        "{{ meta: {{ note: \"{}\" }} }}\n",
        "o".repeat(1024 * 1024 - 64)
    );
    let new = format!(
        "{{ meta: {{ note: \"{}\" }} }}\n",
        "n".repeat(1024 * 1024 - 64)
    );
    let (mut saw_old, mut saw_new) = (0, 0);
    for trial in 0..10u64 {
        let dir = DevDir::new();
        let path = dir.path().join("openclaw.json");
        std::fs::write(&path, &old).unwrap();
        dir.set_config(&config_toml(&path, ""));
        let daemon = RunningDaemon::start(&dir).await;
        let root = signed_in_super_admin(&dir, &daemon).await;
        let session = root.session.clone();
        let (expected, text) = (read(&root.session).await.version.clone(), new.clone());
        let writing = tokio::spawn(async move { write(&session, &expected, &text, "big").await });
        tokio::time::sleep(Duration::from_millis(trial * 20)).await;
        daemon.kill_hard();
        let _ = writing.await;
        let on_disk = std::fs::read(&path).unwrap();
        if on_disk == old.as_bytes() {
            saw_old += 1;
        } else if on_disk == new.as_bytes() {
            saw_new += 1;
        } else {
            panic!("trial {trial}: a torn file of {} bytes", on_disk.len());
        }
        // The next start clears what the killed write left beside it.
        let daemon = RunningDaemon::start(&dir).await;
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".occcd-"))
            .collect();
        assert!(leftovers.is_empty(), "trial {trial}: {leftovers:?}");
        drop(daemon);
    }
    eprintln!("kill -9 during writes: old file {saw_old} times, new file {saw_new} times, torn 0");
}
