//! A session token works only from the OS user that logged in. Needs root
//! (to create a second OS user); CI runs as root.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    process::Command,
};

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{SOCKET_GROUP, ensure_other_user, is_root},
    people::{bootstrap_super_admin, log_in},
    workspace_binary,
};

#[tokio::test]
async fn a_token_replayed_from_another_os_user_is_refused() {
    if !is_root() {
        occc_tests::skip::unavailable(
            "a_token_replayed_from_another_os_user_is_refused",
            "root (it creates a second OS user)",
        );
        return;
    }
    let (uid, gid) = ensure_other_user();
    let dir = DevDir::new();
    dir.set_config(&format!("[socket]\ngroup = \"{SOCKET_GROUP}\"\n"));
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let daemon = RunningDaemon::start(&dir).await;
    let group = nix::unistd::Group::from_name(SOCKET_GROUP)
        .unwrap()
        .unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::gid(&fs::metadata(dir.socket()).unwrap()),
        group.gid.as_raw(),
        "the socket belongs to the configured `socket.group`"
    );
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let session = log_in(&anonymous, &mut root).await;
    let token = session.session().unwrap().expose().to_owned();

    let as_other = |token: &str| {
        let output = Command::new(workspace_binary("occcctl"))
            .args([
                "--socket",
                dir.socket().to_str().unwrap(),
                "--expect-owner",
                "0",
                "--json",
                "whoami",
            ])
            .env("OCCC_SESSION_TOKEN", token)
            .uid(uid)
            .gid(gid)
            .output()
            .expect("occcctl runs as the other user");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, output) = as_other(&token);
    assert!(!ok, "the other uid must be refused: {output}");
    assert!(output.contains("another OS user"), "{output}");
    // The refusal did not end the owner's session.
    session
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("owner still logged in");
}
