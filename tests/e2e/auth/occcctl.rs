//! `occcctl bootstrap` and `occcctl login` as a person would run them: the QR
//! code drawn in the terminal, password and code typed in.

use std::process::Stdio;

use occc_tests::{
    DevDir, RunningDaemon,
    people::{GOOD_PASSWORD, TotpDevice},
    workspace_binary,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `occcctl --dev <dir> <args>` with its own session and state folders,
/// piped.
pub(crate) fn occcctl(dir: &DevDir, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(workspace_binary("occcctl"));
    command
        .args(["--dev", dir.path().to_str().unwrap()])
        .args(args)
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state-home"))
        .env_remove("OCCC_SESSION_TOKEN")
        .env_remove("OCCC_KEY_PASSPHRASE_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn bootstrap_shows_a_terminal_qr_code_then_login_saves_a_private_session() {
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let token_file = dir.path().join("state").join("bootstrap.token");
    let mut child = occcctl(
        &dir,
        &[
            "bootstrap",
            "--token-file",
            token_file.to_str().unwrap(),
            "--username",
            "ops",
            "--password-stdin",
        ],
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{GOOD_PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut screen, mut secret) = (String::new(), None);
    // Read the screen up to the manual key; then occcctl waits for the code.
    while let Some(line) = stderr.next_line().await.unwrap() {
        screen.push_str(&line);
        screen.push('\n');
        if line.contains("enter the key by hand") {
            secret = stderr
                .next_line()
                .await
                .unwrap()
                .map(|key| key.trim().to_owned());
            break;
        }
    }
    assert!(
        screen.contains('█') || screen.contains('▀'),
        "a QR code drawn with block characters:\n{screen}"
    );
    let secret = secret.expect("manual key shown");
    let mut device = TotpDevice::new(&secret);
    stdin
        .write_all(format!("{}\n", device.next_code()).as_bytes())
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Recovery codes"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim().len() == 23 && l.matches('-').count() == 3)
            .count(),
        10
    );

    let mut login = occcctl(
        &dir,
        &["--json", "login", "--username", "ops", "--password-stdin"],
    )
    .spawn()
    .unwrap();
    let code = device.next_code();
    let mut stdin = login.stdin.take().unwrap();
    stdin
        .write_all(format!("{GOOD_PASSWORD}\n{code}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = login.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let saved = dir.path().join("occcctl").join("session");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let whoami = occcctl(&dir, &["--json", "whoami"]).output().await.unwrap();
    let me: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(me["user"]["username"], "ops");
    assert_eq!(me["user"]["role"], "USER_ROLE_SUPER_ADMIN");

    // Elevate with the password, register a device key sealed under a
    // passphrase, and log in again: the chain uses the key.
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, "correct horse battery\n").unwrap();
    let mut elevate = occcctl(&dir, &["elevate", "--with-password", "--password-stdin"])
        .spawn()
        .unwrap();
    let code = device.next_code();
    let mut stdin = elevate.stdin.take().unwrap();
    stdin
        .write_all(format!("{GOOD_PASSWORD}\n{code}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = elevate.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("by password+totp"), "{stdout}");
    let register = occcctl(&dir, &["device-key", "register", "--name", "ci-laptop"])
        .env("OCCC_KEY_PASSPHRASE_FILE", &passphrase_file)
        .output()
        .await
        .unwrap();
    assert!(
        register.status.success(),
        "{}",
        String::from_utf8_lossy(&register.stderr)
    );
    let key_file = dir
        .path()
        .join("state-home")
        .join("occcctl")
        .join("device-key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sealed = std::fs::read_to_string(&key_file).unwrap();
    assert!(sealed.starts_with("occcctl-device-key-v1\n"), "{sealed}");
    assert!(
        !dir.path().join("occcctl").join("device-key").exists(),
        "nothing in the runtime folder"
    );
    // A wrong passphrase opens nothing: the chain falls back to asking for
    // the password (none given here, so the login stops there).
    let wrong = dir.path().join("wrong-passphrase");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let login = occcctl(
        &dir,
        &["--json", "login", "--username", "ops", "--password-stdin"],
    )
    .env("OCCC_KEY_PASSPHRASE_FILE", &wrong)
    .output()
    .await
    .unwrap();
    assert!(!login.status.success());
    assert!(
        String::from_utf8_lossy(&login.stderr).contains("does not open"),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let login = occcctl(&dir, &["--json", "login", "--username", "ops"])
        .env("OCCC_KEY_PASSPHRASE_FILE", &passphrase_file)
        .output()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&login.stdout).unwrap();
    assert_eq!(answer["method"], "LOGIN_METHOD_DEVICE_KEY", "{answer}");
}
