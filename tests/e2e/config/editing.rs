//! Reading, checking, writing, versions and restore, over the socket.

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{elevate, invite, log_in, signed_in_super_admin},
};
use tonic::Code;

use super::{SAMPLE, SAMPLE_SECRETS, config, config_toml, read, write};

#[tokio::test]
async fn edits_are_checked_versioned_audited_and_survive_a_restart() {
    let dir = DevDir::new();
    let path = dir.path().join("openclaw/openclaw.json");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    std::fs::write(&path, SAMPLE).unwrap();
    dir.set_config(&config_toml(&path, ""));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let mut ada = invite(&root.session, &root.anonymous, "ada", pb::UserRole::Admin).await;
    let mut vic = invite(&root.session, &root.anonymous, "vic", pb::UserRole::Viewer).await;
    let ada_session = log_in(&root.anonymous, &mut ada).await;
    let vic_session = log_in(&root.anonymous, &mut vic).await;

    // Imported at first start as version 1; the version is the bytes' hash.
    // The version names the bytes, keyed: the same for every reader.
    let original = read(&root.session).await.version.clone();
    assert_eq!(original.len(), 64);
    let versions = config(&root.session)
        .list_config_versions(pb::ListConfigVersionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (versions[0].number, versions[0].origin.as_str()),
        (1, "imported")
    );
    assert_eq!(versions[0].version, original);

    // Redaction per role: a viewer and an unelevated admin see the layout
    // without the secrets; an elevated admin sees the text as it is.
    for (who, session) in [
        ("viewer", &vic_session),
        ("admin, not elevated", &ada_session),
    ] {
        let file = read(session).await;
        assert!(file.redacted, "{who}");
        assert_eq!(
            file.version, original,
            "{who}: the version is of the bytes on disk"
        );
        for secret in SAMPLE_SECRETS {
            assert!(!file.text.contains(secret), "{who} saw {secret}");
        }
        assert!(file.text.contains("// never beyond this machine"), "{who}");
        assert!(
            file.text.contains("${TELEGRAM_BOT_TOKEN}"),
            "{who}: references stay"
        );
        assert!(file.accepted && file.problems.is_empty());
    }
    elevate(&ada_session, &mut ada).await;
    let file = read(&ada_session).await;
    assert!(!file.redacted);
    assert_eq!(file.text, SAMPLE);

    // Writing needs elevation (the gate), and a viewer cannot at all.
    let edited = SAMPLE.replace("port: 18789", "port: 18790");
    let unelevated = write(&vic_session, &original, &edited, "x")
        .await
        .unwrap_err();
    assert_eq!(unelevated.code(), Code::PermissionDenied);

    // Parse errors name line and column; schema errors their JSON path.
    let broken = SAMPLE.replace("port: 18789,", "port: 18789,,");
    let parse = write(&ada_session, &original, &broken, "typo")
        .await
        .unwrap_err();
    assert_eq!(parse.code(), Code::InvalidArgument);
    assert!(
        parse.message().contains("line 4, column"),
        "{}",
        parse.message()
    );
    let unknown = SAMPLE
        .replace("  models:", "  agent: {},\n  models:")
        .replace("bind: \"loopback\"", "bind: \"everywhere\"");
    let schema = write(&ada_session, &original, &unknown, "x")
        .await
        .unwrap_err();
    assert_eq!(schema.code(), Code::InvalidArgument);
    assert!(
        schema.message().contains("$.agent: unknown key"),
        "{}",
        schema.message()
    );
    assert!(
        schema.message().contains("$.gateway.bind: must be one of"),
        "{}",
        schema.message()
    );
    let placeholder = read(&vic_session).await.text.clone();
    let from_redacted = write(&ada_session, &original, &placeholder, "x")
        .await
        .unwrap_err();
    assert_eq!(from_redacted.code(), Code::InvalidArgument);
    assert!(
        from_redacted.message().contains("redacted copy"),
        "{}",
        from_redacted.message()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        SAMPLE,
        "nothing was written"
    );

    // Two admins edit the same version at once: one wins, one is ABORTED
    // with the current version.
    let other = SAMPLE.replace("workspaceAccess: \"ro\"", "workspaceAccess: \"none\"");
    let (first, second) = tokio::join!(
        write(&ada_session, &original, &edited, "port for the proxy"),
        write(&root.session, &original, &other, "no workspace access"),
    );
    let (won, lost, winner_text) = match (first, second) {
        (Ok(won), Err(lost)) => (won, lost, edited.clone()),
        (Err(lost), Ok(won)) => (won, lost, other.clone()),
        other => panic!("exactly one write wins: {other:?}"),
    };
    assert_eq!(lost.code(), Code::Aborted);
    let current = won.version.clone();
    assert_eq!(read(&root.session).await.version, current);
    assert!(lost.message().contains(&current), "{}", lost.message());
    assert_eq!(
        lost.metadata()
            .get("occc-config-version")
            .unwrap()
            .to_str()
            .unwrap(),
        current
    );
    assert_eq!(won.version, current);
    // The text is stored as sent: comments survive.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), winner_text);

    // A change that weakens security: refused for an admin, with the path;
    // accepted for a super-admin.
    let open_bind = winner_text.replace("bind: \"loopback\"", "bind: \"lan\"");
    let refused = write(&ada_session, &current, &open_bind, "reach it from the LAN")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("gateway.bind"),
        "{}",
        refused.message()
    );
    assert_eq!(
        refused
            .metadata()
            .get("occc-denial")
            .unwrap()
            .to_str()
            .unwrap(),
        "super-admin-required"
    );
    let preview = config(&ada_session)
        .check_config(pb::UpdateConfigRequest {
            container: String::new(),
            expected_version: String::new(),
            text: open_bind.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(preview.needs_super_admin);
    assert_eq!(preview.changes.len(), 1);
    assert_eq!(preview.changes[0].path, "gateway.bind");
    assert_eq!(
        (
            preview.changes[0].before.as_str(),
            preview.changes[0].after.as_str()
        ),
        ("\"loopback\"", "\"lan\"")
    );
    assert!(
        preview.diff.contains("+    bind: \"lan\""),
        "{}",
        preview.diff
    );
    let loosened = write(
        &root.session,
        &current,
        &open_bind,
        "LAN access for the kiosk",
    )
    .await
    .unwrap();
    let stored = loosened.stored.unwrap();
    assert_eq!(stored.number, 3);
    assert_eq!(stored.author, "root");
    assert!(
        stored
            .changes
            .iter()
            .any(|c| c.path == "gateway.bind" && c.loosens)
    );

    // Versions: newest first, with author, note and line counts; a stored
    // version reads redacted unless elevated; diffs between any two.
    let list = config(&ada_session)
        .list_config_versions(pb::ListConfigVersionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .versions;
    let numbers: Vec<i64> = list.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert_eq!((list[0].lines_added, list[0].lines_removed), (1, 1));
    assert_eq!(list[0].note, "LAN access for the kiosk");
    let old = config(&ada_session)
        .get_config_version(pb::ConfigVersionRef {
            container: String::new(),
            number: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!old.redacted);
    assert_eq!(old.text, SAMPLE);
    let diff = config(&root.session)
        .diff_config_versions(pb::DiffConfigVersionsRequest {
            container: String::new(),
            from_number: 1,
            to_number: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        diff.diff.starts_with("--- version 1\n+++ version 3\n"),
        "{}",
        diff.diff
    );
    assert!(
        diff.diff.contains("-    bind: \"loopback\""),
        "{}",
        diff.diff
    );
    let missing = config(&root.session)
        .get_config_version(pb::ConfigVersionRef {
            container: String::new(),
            number: 99,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Restore: an admin is refused by the gate; an elevated super-admin
    // brings version 1 back as a new version.
    let latest = read(&root.session).await.version.clone();
    let restore = |number: i64, note: &str| pb::RestoreConfigVersionRequest {
        container: String::new(),
        number,
        expected_version: latest.clone(),
        note: note.to_owned(),
    };
    let by_admin = config(&ada_session)
        .restore_config_version(restore(1, "back"))
        .await
        .unwrap_err();
    assert_eq!(by_admin.code(), Code::PermissionDenied);
    let restored = config(&root.session)
        .restore_config_version(restore(1, "back to the reviewed config"))
        .await
        .unwrap()
        .into_inner();
    let stored = restored.stored.unwrap();
    assert_eq!(
        (stored.number, stored.origin.as_str(), stored.restored_from),
        (4, "restored", 1)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), SAMPLE);

    // Every write is audited, never with the text.
    let store_kinds = |kind: &'static str| {
        let dir = &dir;
        async move {
            let (store, _) = dir.open_store().await;
            let rows = crate::support::audit_rows_of_kind(&store, kind).await;
            store.close().await;
            rows
        }
    };
    daemon.terminate().await;
    let edits = store_kinds("config_edited").await;
    assert_eq!(edits.len(), 2);
    assert!(
        edits
            .iter()
            .all(|(_, _, detail)| !SAMPLE_SECRETS.iter().any(|s| detail.contains(s)))
    );
    assert_eq!(store_kinds("config_restored").await.len(), 1);
    assert_eq!(store_kinds("config_imported").await.len(), 1);

    // A restart keeps every version and imports nothing again.
    let daemon = RunningDaemon::start(&dir).await;
    let mut again = root.person.clone();
    let session = occc_tests::people::log_in(&daemon.client().await, &mut again).await;
    let list = config(&session)
        .list_config_versions(pb::ListConfigVersionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        list.iter().map(|v| v.number).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert!(read(&session).await.accepted);
}

#[tokio::test]
async fn an_admin_cannot_accept_an_outside_edit_that_weakens_security() {
    let (_dir, path, _daemon, root) = super::editing(SAMPLE).await;
    let mut ada = invite(&root.session, &root.anonymous, "ada", pb::UserRole::Admin).await;
    let ada_session = log_in(&root.anonymous, &mut ada).await;
    elevate(&ada_session, &mut ada).await;

    // Someone with a shell opens the gateway to the LAN.
    let opened = SAMPLE.replace("bind: \"loopback\"", "bind: \"lan\"");
    std::fs::write(&path, &opened).unwrap();
    let file = read(&ada_session).await;
    assert!(!file.accepted);
    // Writing it back as is, or with another edit on top, is judged
    // against the last accepted version too: a super-admin's call.
    for text in [opened.clone(), opened.replace("port: 18789", "port: 18790")] {
        let refused = write(&ada_session, &file.version, &text, "looks fine")
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{}",
            refused.message()
        );
        assert!(
            refused.message().contains("gateway.bind"),
            "{}",
            refused.message()
        );
    }
    let preview = config(&ada_session)
        .check_config(pb::UpdateConfigRequest {
            container: String::new(),
            expected_version: String::new(),
            text: opened.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(preview.needs_super_admin);
    // A super-admin accepts it: stored, and the file is the accepted one.
    let accepted = write(&root.session, &file.version, &opened, "LAN on purpose")
        .await
        .unwrap();
    let stored = accepted.stored.unwrap();
    assert_eq!((stored.number, stored.origin.as_str()), (2, "edited"));
    assert!(
        stored
            .changes
            .iter()
            .any(|c| c.path == "gateway.bind" && c.loosens)
    );
    assert!(read(&ada_session).await.accepted);
}

/// Found by the `requests` fuzz target: with the monitor off, RunChecks
/// queued a request no loop would ever take and answered OK a minute later.
#[tokio::test]
async fn run_checks_with_the_monitor_off_is_refused_with_the_reason() {
    let dir = DevDir::new();
    let path = dir.path().join("openclaw.json");
    std::fs::write(&path, SAMPLE).unwrap();
    dir.set_config(&config_toml(&path, ""));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    for _ in 0..3 {
        let refused = root
            .session
            .integrity()
            .run_checks(pb::RunChecksRequest {})
            .await
            .expect_err("nothing to run checks with");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(
            refused.message().contains("integrity.enabled = false"),
            "{}",
            refused.message()
        );
    }
}

/// An edit made outside occcd is kept as a version of its own ("found",
/// audited `config_found_outside`) before an edit through occcd replaces
/// it: nothing on disk is lost without a trace.
#[tokio::test]
async fn an_outside_text_is_stored_as_a_version_before_occcd_replaces_it() {
    let (_dir, path, _daemon, mut root) = super::editing(SAMPLE).await;
    occc_tests::people::elevate(&root.session, &mut root.person).await;
    let outside = SAMPLE.replace("18789", "18790");
    std::fs::write(&path, &outside).unwrap();
    let found = read(&root.session).await.version.clone();
    let ours = SAMPLE.replace("18789", "18791");
    write(&root.session, &found, &ours, "back to a port of ours")
        .await
        .unwrap();
    let versions = config(&root.session)
        .list_config_versions(pb::ListConfigVersionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .versions;
    let listed: Vec<(i64, &str)> = versions
        .iter()
        .map(|v| (v.number, v.origin.as_str()))
        .collect();
    assert_eq!(listed, [(3, "edited"), (2, "found"), (1, "imported")]);
    let kept = versions.iter().find(|v| v.origin == "found").unwrap();
    assert_eq!(kept.version, found, "the outside bytes, as they were");
    let entries = root
        .session
        .audit()
        .list_audit_entries(pb::ListAuditEntriesRequest {
            kind: "config_found_outside".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1, "{entries:?}");
}
