//! `occcctl skills` as an operator runs it: submit a folder, list, show the
//! signals, approve (refused until elevated, with the command to run),
//! diff, revoke — text and JSON.

use std::process::Stdio;

use occc_tests::{
    DevDir, RunningDaemon,
    people::{SignedIn, elevate, invite, log_in, signed_in_super_admin},
};

use super::fixture;

/// `occcctl` with `token` as the session; success, stdout, stderr.
async fn occcctl(dir: &DevDir, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = crate::auth::occcctl::occcctl(dir, args)
        .env("OCCC_SESSION_TOKEN", token)
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
async fn occcctl_submits_lists_shows_approves_diffs_and_revokes() {
    let dir = DevDir::new();
    let install = dir.path().join("openclaw-skills");
    std::fs::create_dir(&install).unwrap();
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    dir.set_config(&format!(
        "[skills]\ninstall_dir = \"{}\"\ninstall_owner = \"{uid}:{gid}\"\n",
        install.display()
    ));
    let daemon = RunningDaemon::start(&dir).await;
    let SignedIn {
        anonymous,
        session: root,
        ..
    } = signed_in_super_admin(&dir, &daemon).await;
    let root_token = root.session().unwrap().expose().to_owned();
    let mut ada = invite(&root, &anonymous, "ada", pb_admin()).await;
    let ada_session = log_in(&anonymous, &mut ada).await;
    let ada_token = ada_session.session().unwrap().expose().to_owned();

    let folder = fixture("brew-install");
    let (ok, out, err) = occcctl(
        &dir,
        &root_token,
        &["--json", "skills", "submit", folder.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{err}");
    let submitted: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let hash = submitted["tree_hash"].as_str().unwrap().to_owned();
    assert_eq!(
        (submitted["level"].as_str(), submitted["state"].as_str()),
        (Some("RISK_LEVEL_MEDIUM"), Some("SKILL_STATE_PENDING"))
    );

    let (ok, out, _) = occcctl(&dir, &ada_token, &["skills", "list"]).await;
    assert!(
        ok && out.contains("github") && out.contains("pending"),
        "{out}"
    );
    let (ok, out, _) = occcctl(&dir, &ada_token, &["skills", "show", &hash]).await;
    assert!(
        ok && out.contains("install.package") && out.contains("SKILL.md"),
        "{out}"
    );

    let (ok, _, err) = occcctl(
        &dir,
        &ada_token,
        &["skills", "approve", &hash, "--note", "gh is fine"],
    )
    .await;
    assert!(!ok && err.contains("occcctl elevate"), "{err}");
    elevate(&ada_session, &mut ada).await;
    let (ok, out, err) = occcctl(
        &dir,
        &ada_token,
        &["skills", "approve", &hash, "--note", "gh is fine"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("approved") && out.contains("installed"),
        "{out}"
    );
    assert!(install.join("github/SKILL.md").exists());

    let other = fixture("needs-binary");
    let (_, out, _) = occcctl(
        &dir,
        &root_token,
        &["--json", "skills", "submit", other.to_str().unwrap()],
    )
    .await;
    let other_hash = serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["tree_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out, _) = occcctl(&dir, &ada_token, &["skills", "diff", &hash, &other_hash]).await;
    assert!(
        ok && out.contains("risk: medium → low") && out.contains("~ SKILL.md"),
        "{out}"
    );

    let (ok, out, err) = occcctl(
        &dir,
        &ada_token,
        &["skills", "revoke", &hash, "--note", "not needed"],
    )
    .await;
    assert!(ok && out.contains("revoked"), "{out}{err}");
    assert!(!install.join("github").exists());
    let (ok, _, err) = occcctl(&dir, &ada_token, &["skills", "list", "--state", "nonsense"]).await;
    assert!(!ok && err.contains("one of pending"), "{err}");
}

fn pb_admin() -> occc_client::proto::UserRole {
    occc_client::proto::UserRole::Admin
}
