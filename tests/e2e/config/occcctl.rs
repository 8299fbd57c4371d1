//! `occcctl config` as an operator runs it: show (redacted for a viewer),
//! edit in $EDITOR on a private temporary copy, versions, diff, restore.

use std::process::Stdio;

use occc_client::proto as pb;
use occc_tests::{
    DevDir,
    people::{invite, log_in},
};

use super::{SAMPLE, SAMPLE_SECRETS};

/// `occcctl` with `token` and `editor`; success, stdout, stderr.
async fn occcctl(dir: &DevDir, token: &str, editor: &str, args: &[&str]) -> (bool, String, String) {
    let output = crate::auth::occcctl::occcctl(dir, args)
        .env("OCCC_SESSION_TOKEN", token)
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn occcctl_shows_edits_lists_diffs_and_restores_the_config() {
    let (dir, path, _daemon, root) = super::editing(SAMPLE).await;
    let token = root.session.session().unwrap().expose().to_owned();
    let mut vic = invite(&root.session, &root.anonymous, "vic", pb::UserRole::Viewer).await;
    let vic_token = log_in(&root.anonymous, &mut vic)
        .await
        .session()
        .unwrap()
        .expose()
        .to_owned();

    // A viewer sees the layout, not the secrets.
    let (ok, out, err) = occcctl(&dir, &vic_token, "false", &["config", "show"]).await;
    assert!(ok, "{err}");
    assert!(err.contains("secrets redacted"), "{err}");
    assert!(out.contains("// never beyond this machine"), "{out}");
    assert!(SAMPLE_SECRETS.iter().all(|s| !out.contains(s)), "{out}");

    // Edit: $EDITOR gets a private copy, which is gone afterwards.
    let record = dir.path().join("editor-saw");
    let editor = format!(
        "f() {{ echo \"$1 $(stat -c %a \"$1\")\" > {}; sed -i s/18789/18790/ \"$1\"; }}; f",
        record.display()
    );
    let (ok, out, err) = occcctl(
        &dir,
        &token,
        &editor,
        &["config", "edit", "--yes", "--note", "proxy port"],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("+    port: 18790,"), "{out}");
    assert!(
        out.contains("no security-relevant setting changes"),
        "{out}"
    );
    assert!(out.contains("written: version #2"), "{out}");
    let saw = std::fs::read_to_string(&record).unwrap();
    let (copy, mode) = saw.trim().rsplit_once(' ').unwrap();
    assert_eq!(mode, "600");
    assert!(
        !std::path::Path::new(copy).exists(),
        "the temporary copy is removed"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        SAMPLE.replace("18789", "18790")
    );

    // An edit that weakens security says so before writing.
    let (ok, out, _) = occcctl(
        &dir,
        &token,
        "sed -i s/loopback/lan/",
        &["config", "edit", "--yes", "--note", "LAN"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("WEAKENS gateway.bind: \"loopback\" -> \"lan\""),
        "{out}"
    );

    let (ok, out, _) = occcctl(&dir, &token, "false", &["--json", "config", "versions"]).await;
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let numbers: Vec<i64> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert_eq!(listed["versions"][1]["note"], "proxy port");

    let (ok, out, _) = occcctl(&dir, &token, "false", &["config", "diff", "1", "2"]).await;
    assert!(
        ok && out.contains("-    port: 18789,") && out.contains("+    port: 18790,"),
        "{out}"
    );

    let (ok, out, err) = occcctl(
        &dir,
        &token,
        "false",
        &["config", "restore", "1", "--note", "back", "--yes"],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("restored version 1 as version #4"), "{out}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), SAMPLE);
}
