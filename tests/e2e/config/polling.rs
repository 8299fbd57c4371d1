//! A frontend polling GetConfig and ListConfigVersions: answers come from
//! the last one only while nothing changed — an edit through occcd, an edit
//! outside it (same size, within one timestamp tick, or a file renamed
//! over it), or a new version shows on the very next call, and an
//! elevated admin's view (with secrets) is never served from a redacted one.

use occc_client::proto as pb;
use occc_tests::people::{invite, log_in};

use super::{SAMPLE, SAMPLE_SECRETS, config, editing, read, write};

async fn versions(session: &occc_client::OcccClient) -> Vec<i64> {
    config(session)
        .list_config_versions(pb::ListConfigVersionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .versions
        .iter()
        .map(|v| v.number)
        .collect()
}

#[tokio::test]
async fn polled_reads_change_as_soon_as_the_file_or_the_versions_do() {
    let (_dir, path, _daemon, root) = editing(SAMPLE).await;
    let mut vic = invite(&root.session, &root.anonymous, "vic", pb::UserRole::Viewer).await;
    let viewer = log_in(&root.anonymous, &mut vic).await;

    let first = read(&viewer).await;
    assert!(first.redacted);
    assert_eq!(
        read(&viewer).await.version,
        first.version,
        "unchanged: same answer"
    );
    assert_eq!(versions(&root.session).await, versions(&root.session).await);
    let before = versions(&root.session).await;

    // Outside occcd: the next read shows it.
    let outside = SAMPLE.replace("18789", "18790");
    std::fs::write(&path, &outside).unwrap();
    let after_outside = read(&viewer).await;
    assert_ne!(after_outside.version, first.version);
    assert!(
        after_outside.text.contains("18790"),
        "{}",
        after_outside.text
    );
    // Same-size writes back to back (one timestamp tick), and a file
    // renamed over it: each shows on the very next call.
    for port in ["18792", "18793", "18790"] {
        std::fs::write(&path, outside.replace("18790", port)).unwrap();
        let shown = read(&viewer).await;
        assert!(shown.text.contains(port), "{port}: {}", shown.text);
    }
    let beside = path.with_extension("json.new");
    std::fs::write(&beside, outside.replace("18790", "18794")).unwrap();
    std::fs::rename(&beside, &path).unwrap();
    assert!(read(&viewer).await.text.contains("18794"), "renamed over");
    std::fs::write(&path, &outside).unwrap();
    assert!(read(&viewer).await.text.contains("18790"));

    // Through occcd: a new version, listed on the next call.
    let current = read(&root.session).await;
    assert!(!current.redacted && SAMPLE_SECRETS.iter().any(|s| current.text.contains(s)));
    let written = write(
        &root.session,
        &current.version,
        &outside.replace("18790", "18791"),
        "port",
    )
    .await
    .unwrap();
    let listed = versions(&root.session).await;
    assert!(listed.len() > before.len(), "{listed:?} after {before:?}");
    let after_write = read(&viewer).await;
    assert_eq!(after_write.version, written.version);
    assert!(after_write.text.contains("18791"));
    assert!(after_write.redacted && SAMPLE_SECRETS.iter().all(|s| !after_write.text.contains(s)));
    // The elevated admin still gets the secrets, not the viewer's copy.
    let admin_view = read(&root.session).await;
    assert!(!admin_view.redacted && SAMPLE_SECRETS.iter().any(|s| admin_view.text.contains(s)));
}
