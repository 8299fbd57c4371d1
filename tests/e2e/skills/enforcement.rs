//! The integrity monitor holds the skills folder to the approved set: an
//! install by occcd raises nothing; an unapproved folder dropped in is a
//! high finding; an installed skill changed afterwards is critical (and,
//! by the default response, quarantines the container).

use std::time::Duration;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, say_skipped, shared_socket},
    people::{SignedIn, elevate, invite, log_in, signed_in_super_admin},
};

use super::{decision, fixture, skills, submit, tar_of_folder};
use crate::integrity::{
    Watch, check_ids, container_status, integrity_config, wait_for_status, watch_until,
};

#[tokio::test]
async fn unapproved_and_modified_skill_folders_are_findings_and_occcds_own_installs_are_not() {
    let Some(socket) = shared_socket() else {
        return say_skipped(
            "unapproved_and_modified_skill_folders_are_findings_and_occcds_own_installs_are_not",
        );
    };
    let gateway = TestContainer::create(&socket, "skills", &TestContainer::hardened_flags());
    gateway.start();
    let dir = DevDir::new();
    let install = dir.path().join("openclaw-skills");
    std::fs::create_dir(&install).unwrap();
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    dir.set_config(&format!(
        "{}\n[skills]\ninstall_dir = \"{}\"\ninstall_owner = \"{uid}:{gid}\"\n",
        integrity_config(&socket, &[Watch::new(&gateway.name)]),
        install.display()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let SignedIn {
        anonymous,
        session: root,
        ..
    } = signed_in_super_admin(&dir, &daemon).await;
    let mut ada = invite(&root, &anonymous, "ada", pb::UserRole::Admin).await;
    let ada_session = log_in(&anonymous, &mut ada).await;
    elevate(&ada_session, &mut ada).await;
    let no_skill_findings = |s: &pb::ContainerStatus| {
        s.health() != pb::ContainerHealth::Unknown
            && !check_ids(s).iter().any(|id| id.starts_with("skills."))
    };
    wait_for_status(
        &root,
        &gateway.name,
        Duration::from_secs(20),
        no_skill_findings,
    )
    .await;

    // occcd's own install: no finding, ever.
    let weather = submit(
        &root,
        pb::ArchiveFormat::Tar,
        &tar_of_folder(&fixture("needs-binary"), "weather"),
    )
    .await
    .unwrap();
    skills(&ada_session)
        .approve_skill(decision(&weather, "curl only"))
        .await
        .unwrap();
    root.integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let status = container_status(&root, &gateway.name).await;
    assert!(no_skill_findings(&status), "{:?}", check_ids(&status));

    // A folder nobody approved: high.
    let dropped = install.join("helpful-summaries");
    std::fs::create_dir(&dropped).unwrap();
    std::fs::copy(
        fixture("prompt-injection").join("SKILL.md"),
        dropped.join("SKILL.md"),
    )
    .unwrap();
    root.integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let status = container_status(&root, &gateway.name).await;
    let unapproved = status
        .findings
        .iter()
        .find(|f| f.check_id == "skills.unapproved")
        .expect("unapproved finding");
    assert_eq!(unapproved.severity(), pb::Severity::High);
    assert!(
        unapproved.summary.contains("helpful-summaries"),
        "{}",
        unapproved.summary
    );
    assert!(
        status.quarantine.is_none(),
        "high does not quarantine by default"
    );
    std::fs::remove_dir_all(&dropped).unwrap();

    // The installed skill changed by one byte: critical, quarantined (the
    // watch starts first: the quarantine revokes the session).
    let quarantined = watch_until(&root, &gateway.name, Duration::from_secs(20), |s| {
        s.quarantine.is_some()
    })
    .await;
    let skill_md = install.join("weather/SKILL.md");
    let mut text = std::fs::read_to_string(&skill_md).unwrap();
    text.push('\n');
    std::fs::write(&skill_md, text).unwrap();
    let status = quarantined.await.expect("quarantined within 20 s");
    let tampered = status
        .findings
        .iter()
        .find(|f| f.check_id == "skills.tampered")
        .expect("tamper finding");
    assert_eq!(tampered.severity(), pb::Severity::Critical);
    assert!(
        !check_ids(&status).contains(&"skills.unapproved".to_owned()),
        "{:?}",
        check_ids(&status)
    );
}

#[tokio::test]
async fn a_skill_folder_inside_the_container_is_held_to_the_approved_set() {
    let Some(socket) = shared_socket() else {
        return say_skipped("a_skill_folder_inside_the_container_is_held_to_the_approved_set");
    };
    // A writable root filesystem, so a skill can be copied in.
    let mut flags = TestContainer::hardened_flags();
    flags.retain(|flag| *flag != "--read-only");
    let gateway = TestContainer::create(&socket, "skills-in", &flags);
    gateway.start();
    let dir = DevDir::new();
    dir.set_config(&format!(
        "{}\n[skills]\ncontainer_dirs = [\"/skills\"]\n",
        integrity_config(&socket, &[Watch::new(&gateway.name)])
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let SignedIn {
        anonymous,
        session: root,
        ..
    } = signed_in_super_admin(&dir, &daemon).await;
    let mut ada = invite(&root, &anonymous, "ada", pb::UserRole::Admin).await;
    let ada_session = log_in(&anonymous, &mut ada).await;
    elevate(&ada_session, &mut ada).await;
    wait_for_status(&root, &gateway.name, Duration::from_secs(20), |s| {
        s.health() != pb::ContainerHealth::Unknown
    })
    .await;

    // An unapproved skill copied into the container: high, named.
    let staging = tempfile::tempdir().unwrap();
    let skills_dir = staging.path().join("skills");
    std::fs::create_dir_all(skills_dir.join("pure-notes")).unwrap();
    std::fs::copy(
        fixture("pure-notes").join("SKILL.md"),
        skills_dir.join("pure-notes/SKILL.md"),
    )
    .unwrap();
    occc_tests::docker::docker_ok(
        &socket,
        &[
            "cp",
            skills_dir.to_str().unwrap(),
            &format!("{}:/skills", gateway.name),
        ],
    );
    root.integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let status = container_status(&root, &gateway.name).await;
    let finding = status
        .findings
        .iter()
        .find(|f| f.check_id == "skills.container_unapproved")
        .expect("finding");
    assert_eq!(finding.severity(), pb::Severity::High);
    assert!(
        finding.summary.contains("/skills/pure-notes"),
        "{}",
        finding.summary
    );

    // Once exactly those bytes are approved, the finding goes.
    let version = submit(
        &root,
        pb::ArchiveFormat::Tar,
        &tar_of_folder(&fixture("pure-notes"), "pure-notes"),
    )
    .await
    .unwrap();
    skills(&ada_session)
        .approve_skill(decision(&version, "notes only"))
        .await
        .unwrap();
    root.integrity()
        .run_checks(pb::RunChecksRequest {})
        .await
        .unwrap();
    let status = container_status(&root, &gateway.name).await;
    assert!(
        !check_ids(&status).contains(&"skills.container_unapproved".to_owned()),
        "{:?}",
        check_ids(&status)
    );
}
