//! What one OS user learns and can do about another's device keys (issue
//! #9, items 7 and 8; root, for a second and third OS user): the login-method
//! list names a device key only to the OS user that registered it (and
//! root); a flood of login challenges from one uid leaves another uid's
//! device-key login working.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    os_user::{
        ensure_login_user, ensure_other_user, is_root, peer_as, socket_gid, socket_group_config,
    },
    people::{Person, bootstrap_super_admin, elevate, invite, log_in},
    workspace_binary,
};
use tokio::io::AsyncWriteExt;

use super::pam::{FINGER_USER, UNIX_PASSWORD};

/// `occcctl <args>` run as `uid` with its own private state folders under
/// `home`; `input` goes to its standard input.
async fn occcctl_as(
    uid: u32,
    home: &Path,
    socket: &Path,
    args: &[&str],
    input: &str,
    passphrase_file: Option<&Path>,
) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(workspace_binary("occcctl"));
    command
        .args(["--socket", socket.to_str().unwrap(), "--expect-owner", "0"])
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("OCCC_SESSION_TOKEN")
        .env_remove("OCCC_KEY_PASSPHRASE_FILE")
        .uid(uid)
        .gid(socket_gid())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(file) = passphrase_file {
        command.env("OCCC_KEY_PASSPHRASE_FILE", file);
    }
    let mut child = command.spawn().expect("occcctl runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A private home folder for `uid`.
fn home_for(uid: u32) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::Builder::new()
        .prefix("occc-home-")
        .tempdir()
        .unwrap();
    let path = home.path().to_owned();
    nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    (home, path)
}

async fn methods(client: &OcccClient, username: &str) -> String {
    let request = pb::GetLoginMethodsRequest {
        username: username.to_owned(),
    };
    let methods = client.device_keys().get_login_methods(request).await;
    let names: Vec<&str> = methods
        .expect("methods")
        .into_inner()
        .methods()
        .map(|m| m.as_str_name())
        .collect();
    names.join(",")
}

#[tokio::test]
async fn device_keys_are_named_only_to_their_os_user_and_a_challenge_flood_blocks_no_one_else() {
    if !is_root() {
        occc_tests::skip::unavailable(
            "device_keys_are_named_only_to_their_os_user_and_a_challenge_flood_blocks_no_one_else",
            "root (it creates other OS users)",
        );
        return;
    }
    let (bob_uid, _) = ensure_other_user();
    let stranger_uid = ensure_login_user(FINGER_USER, UNIX_PASSWORD);
    let dir = DevDir::new();
    dir.set_config(&socket_group_config());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let daemon = RunningDaemon::start(&dir).await;
    let socket = dir.socket();
    let anonymous = daemon.client().await;
    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    let admin = log_in(&anonymous, &mut root).await;
    elevate(&admin, &mut root).await;
    let mut bob: Person = invite(&admin, &anonymous, "bob", pb::UserRole::Viewer).await;

    // Bob's OS user logs in, re-proves his password and registers a key.
    let (_home, home) = home_for(bob_uid);
    let passphrase = home.join("passphrase");
    fs::write(&passphrase, "bob's long passphrase\n").unwrap();
    nix::unistd::chown(&passphrase, Some(nix::unistd::Uid::from_raw(bob_uid)), None).unwrap();
    let typed =
        |person: &mut Person| format!("{}\n{}\n", person.password, person.device.next_code());
    let login = ["--json", "login", "--username", "bob", "--password-stdin"];
    let (ok, out, err) = occcctl_as(bob_uid, &home, &socket, &login, &typed(&mut bob), None).await;
    assert!(ok, "{out}{err}");
    let elevate_args = ["elevate", "--with-password", "--password-stdin"];
    let (ok, out, err) = occcctl_as(
        bob_uid,
        &home,
        &socket,
        &elevate_args,
        &typed(&mut bob),
        None,
    )
    .await;
    assert!(ok, "{out}{err}");
    let register = ["device-key", "register", "--name", "bob-laptop"];
    let (ok, out, err) =
        occcctl_as(bob_uid, &home, &socket, &register, "", Some(&passphrase)).await;
    assert!(ok, "{out}{err}");
    let key_id = out
        .split_whitespace()
        .find(|word| word.starts_with("dk_"))
        .expect("the key id")
        .to_owned();

    // Told to bob's OS user and to root; to any other, bob looks like a
    // user without device keys.
    let mine = peer_as(bob_uid, &socket, &["login-methods", "bob"]).await;
    assert_eq!(
        mine.trim(),
        "ok LOGIN_METHOD_DEVICE_KEY,LOGIN_METHOD_PASSWORD_TOTP"
    );
    let theirs = peer_as(stranger_uid, &socket, &["login-methods", "bob"]).await;
    assert_eq!(theirs.trim(), "ok LOGIN_METHOD_PASSWORD_TOTP");
    assert_eq!(
        methods(&anonymous, "bob").await,
        "LOGIN_METHOD_DEVICE_KEY,LOGIN_METHOD_PASSWORD_TOTP"
    );

    // Another OS user signing with a wrong key for bob's key id fails — and
    // locks only its own attempts, not bob's.
    let wrong = tempfile::Builder::new()
        .prefix("occc-key-")
        .tempdir()
        .unwrap();
    fs::set_permissions(wrong.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let wrong_key = wrong.path().join("pkcs8.hex");
    let stranger_key = occc_client::SoftwareAuthenticator::generate().unwrap();
    let hex: String = stranger_key
        .pkcs8()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(&wrong_key, hex).unwrap();
    fs::set_permissions(&wrong_key, fs::Permissions::from_mode(0o644)).unwrap();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let args = [
            "device-login",
            "bob",
            key_id.as_str(),
            wrong_key.to_str().unwrap(),
        ];
        answers.push(peer_as(stranger_uid, &socket, &args).await);
    }
    assert!(
        answers[..5]
            .iter()
            .all(|a| a.starts_with("error Unauthenticated")),
        "{answers:?}"
    );
    assert!(
        answers[5].starts_with("error ResourceExhausted"),
        "{answers:?}"
    );

    // Root floods the challenge book far past its old global limit…
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = anonymous.clone();
        flood.spawn(async move {
            for i in 0..1_400 {
                let request = pb::CreateLoginChallengeRequest {
                    username: format!("flood{worker}x{}", i % 50),
                };
                client
                    .device_keys()
                    .create_login_challenge(request)
                    .await
                    .expect("a flooding uid drops its own oldest challenges, not new ones");
            }
        });
    }
    while let Some(done) = flood.join_next().await {
        done.unwrap();
    }
    // …and bob's OS user still logs in with his key.
    let device_login = ["--json", "login", "--username", "bob"];
    let (ok, out, err) = occcctl_as(
        bob_uid,
        &home,
        &socket,
        &device_login,
        "",
        Some(&passphrase),
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("LOGIN_METHOD_DEVICE_KEY"), "{out}{err}");
    daemon.terminate().await;
}
