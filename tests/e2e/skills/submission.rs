//! Submitting skills: each fixture's level and reasons, every kind of bad
//! archive refused with INVALID_ARGUMENT naming the entry, storing nothing;
//! one archive being sent per OS user, and an upload that outlives its
//! session stores nothing.

use occc_client::proto as pb;
use occc_tests::{DevDir, RunningDaemon, people::signed_in_super_admin};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::{fixture, skills, submit, tar_of_folder, zip_of};

#[tokio::test]
async fn each_fixture_skill_gets_its_level_and_reasons_over_the_socket() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let expected = [
        ("pure-notes", pb::RiskLevel::Low, ""),
        ("needs-binary", pb::RiskLevel::Low, "requires.bins"),
        (
            "needs-api-key",
            pb::RiskLevel::Medium,
            "requires.secret_env",
        ),
        ("brew-install", pb::RiskLevel::Medium, "install.package"),
        ("curl-pipe-sh", pb::RiskLevel::Critical, "net.fetch_exec"),
        (
            "base64-payload",
            pb::RiskLevel::Critical,
            "obfuscation.decode_exec",
        ),
        ("ships-binary", pb::RiskLevel::High, "binary.executable"),
        (
            "prompt-injection",
            pb::RiskLevel::Critical,
            "prompt.injection",
        ),
    ];
    for (name, level, rule) in expected {
        let archive = tar_of_folder(&fixture(name), name);
        let version = submit(&root.session, pb::ArchiveFormat::Tar, &archive)
            .await
            .unwrap();
        assert_eq!(version.level, level as i32, "{name}");
        assert_eq!(version.state, pb::SkillState::Pending as i32);
        assert_eq!(version.submitted_by, "root");
        let detail = skills(&root.session)
            .get_skill(pb::SkillRef {
                tree_hash: version.tree_hash.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !rule.is_empty() {
            let signal = detail
                .signals
                .iter()
                .find(|s| s.rule == rule)
                .unwrap_or_else(|| panic!("{name}: {rule}"));
            assert!(!signal.file.is_empty() && !signal.reason.is_empty());
        }
        assert!(detail.files.iter().any(|f| f.path == "SKILL.md"), "{name}");
    }
    // The same bytes again are the same version, and a zip of them too.
    let again = submit(
        &root.session,
        pb::ArchiveFormat::Tar,
        &tar_of_folder(&fixture("pure-notes"), "x"),
    )
    .await
    .unwrap();
    let skill_md = std::fs::read(fixture("pure-notes").join("SKILL.md")).unwrap();
    let zipped = submit(
        &root.session,
        pb::ArchiveFormat::Zip,
        &zip_of(&[("SKILL.md", &skill_md)]),
    )
    .await
    .unwrap();
    assert_eq!(again.tree_hash, zipped.tree_hash);
    let listed = skills(&root.session)
        .list_skills(pb::ListSkillsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.skills.len(), 8);
}

#[tokio::test]
async fn bad_archives_are_refused_by_entry_and_nothing_is_stored() {
    let dir = DevDir::new();
    dir.set_config("[skills]\nmax_unpacked_bytes = 1048576\nmax_archive_bytes = 2097152\n");
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let skill_md: &[u8] = b"---\nname: t\ndescription: d\n---\n";
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let cases: Vec<(Vec<u8>, pb::ArchiveFormat, &str)> = vec![
        (
            tar_of_folder(&fixture("invalid-yaml"), "broken"),
            pb::ArchiveFormat::Tar,
            "not valid YAML",
        ),
        (
            zip_of(&[("SKILL.md", skill_md), ("zeros", &zeros)]),
            pb::ArchiveFormat::Zip,
            "zeros",
        ),
        (
            zip_of(&[("SKILL.md", skill_md), ("../../etc/cron.d/x", b"x")]),
            pb::ArchiveFormat::Zip,
            "path traversal",
        ),
        (
            zip_of(&[("SKILL.md", skill_md), ("/abs", b"x")]),
            pb::ArchiveFormat::Zip,
            "absolute path",
        ),
        (
            zip_of(&[("SKILL.md", skill_md), ("skill.md", b"x")]),
            pb::ArchiveFormat::Zip,
            "duplicate entry",
        ),
        (
            zip_of(&[("README.md", b"x")]),
            pb::ArchiveFormat::Zip,
            "no SKILL.md",
        ),
        (
            b"not an archive".to_vec(),
            pb::ArchiveFormat::Zip,
            "not a zip archive",
        ),
        (
            vec![0u8; 3 * 1024 * 1024],
            pb::ArchiveFormat::Tar,
            "max_archive_bytes",
        ),
    ];
    for (archive, format, says) in cases {
        let status = submit(&root.session, format, &archive).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{says}: {status:?}");
        assert!(
            status.message().contains(says),
            "{says}: {}",
            status.message()
        );
    }
    // A symlink escaping the folder, as a tar entry.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "escape", "../../../../root/.ssh/id_ed25519")
        .unwrap();
    let mut file = tar::Header::new_gnu();
    file.set_size(skill_md.len() as u64);
    builder
        .append_data(&mut file, "SKILL.md", skill_md)
        .unwrap();
    let status = submit(
        &root.session,
        pb::ArchiveFormat::Tar,
        &builder.into_inner().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        status.message().contains("escape: symbolic link"),
        "{}",
        status.message()
    );
    let listed = skills(&root.session)
        .list_skills(pb::ListSkillsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.skills.is_empty());
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("state/skills"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "nothing kept: {stored:?}");
}

#[tokio::test]
async fn one_upload_at_a_time_per_uid_and_one_outliving_its_session_stores_nothing() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let archive = tar_of_folder(&fixture("pure-notes"), "pure-notes");

    // An upload begins: its first chunk sent, the rest held back. A second
    // upload of the same OS user is refused meanwhile, saying why (not an
    // archive: should it get in before the first, it stores nothing). Each
    // probe holds the uid's place for a moment, so a first upload arriving
    // just then is itself refused: it is begun again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (chunks, first, second) = 'begin: loop {
        let (chunks, held_back) = tokio::sync::mpsc::channel(4);
        chunks
            .send(pb::SkillArchiveChunk {
                format: pb::ArchiveFormat::Tar as i32,
                data: archive[..archive.len() / 2].to_vec(),
            })
            .await
            .unwrap();
        let mut uploads = skills(&root.session);
        let first = tokio::spawn(async move {
            uploads
                .submit_skill(ReceiverStream::new(held_back))
                .await
                .map(tonic::Response::into_inner)
        });
        loop {
            let status = submit(&root.session, pb::ArchiveFormat::Zip, b"not an archive")
                .await
                .unwrap_err();
            if status.message().contains("skill archives being sent") {
                break 'begin (chunks, first, status);
            }
            assert!(std::time::Instant::now() < deadline, "{status:?}");
            if first.is_finished() {
                let refused = first.await.unwrap().unwrap_err();
                assert!(
                    refused.message().contains("skill archives being sent"),
                    "{refused:?}"
                );
                continue 'begin;
            }
            // The first may not have reached the daemon yet.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    assert_eq!(second.code(), Code::ResourceExhausted, "{second:?}");

    // The session ends before the upload does: the upload is cut off then,
    // while its client still holds the rest back, and nothing is stored.
    root.session
        .auth()
        .logout(pb::LogoutRequest {})
        .await
        .unwrap();
    let refused = first.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    drop(chunks);
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("state/skills"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "nothing kept: {stored:?}");
}
