//! occcctl for every administrative task, as a script or a person runs it:
//! first run forgiving typos, a default username, changes that ask for
//! re-authentication and retry, `--json` from the API's own types, and exit
//! codes that say what went wrong.

use std::process::Stdio;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{GOOD_PASSWORD, TotpDevice, invite, log_in, signed_in_super_admin},
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::occcctl::occcctl;

/// Runs occcctl with `token` and `stdin`; (exit code, stdout, stderr).
async fn run(
    dir: &DevDir,
    token: Option<&str>,
    stdin: &str,
    args: &[&str],
) -> (i32, String, String) {
    let mut command = occcctl(dir, args);
    if let Some(token) = token {
        command.env("OCCC_SESSION_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn first_run_asks_twice_retries_the_code_and_login_needs_no_username() {
    let dir = DevDir::new();
    let _daemon = RunningDaemon::start(&dir).await;
    let token_file = dir.path().join("state").join("bootstrap.token");
    // The OS user's own name is the default username later: this runs as root.
    let os_user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    let mut child = occcctl(
        &dir,
        &[
            "bootstrap",
            "--token-file",
            token_file.to_str().unwrap(),
            "--username",
            &os_user,
        ],
    )
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A typo in the repeat, then the same password twice.
    let typed = format!("{GOOD_PASSWORD}\n{GOOD_PASSWORD}x\n{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n");
    stdin.write_all(typed.as_bytes()).await.unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut screen = String::new();
    let mut device = None;
    while let Some(line) = stderr.next_line().await.unwrap() {
        screen.push_str(&line);
        screen.push('\n');
        if line.contains("enter the key by hand") {
            let key = stderr.next_line().await.unwrap().unwrap();
            device = Some(TotpDevice::new(key.trim()));
            break;
        }
    }
    let mut device = device.unwrap_or_else(|| panic!("no enrolment shown:\n{screen}"));
    // A wrong code first: asked again, the enrolment kept.
    stdin.write_all(b"000000\n").await.unwrap();
    while let Some(line) = stderr.next_line().await.unwrap() {
        screen.push_str(&line);
        screen.push('\n');
        if line.contains("try the next code") {
            stdin
                .write_all(format!("{}\n", device.next_code()).as_bytes())
                .await
                .unwrap();
        }
    }
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}\n{stdout}");
    assert!(screen.contains("the two passwords differ"), "{screen}");
    assert!(screen.contains("try the next code"), "{screen}");
    assert!(stdout.contains("Recovery codes"), "{stdout}");

    // No --username: the OS account's name; then remembered.
    let code = device.next_code();
    let (status, out, err) = run(
        &dir,
        None,
        &format!("{GOOD_PASSWORD}\n{code}\n"),
        &["--json", "login", "--password-stdin"],
    )
    .await;
    assert_eq!(status, 0, "{out}{err}");
    assert_eq!(json_lines(&out)[0]["username"], os_user.as_str());
    let remembered = dir
        .path()
        .join("state-home")
        .join("occcctl")
        .join("last-username");
    assert_eq!(std::fs::read_to_string(remembered).unwrap(), os_user);
}

#[tokio::test]
async fn admin_commands_elevate_when_asked_and_exit_codes_say_why() {
    let dir = DevDir::new();
    let daemon = RunningDaemon::start(&dir).await;
    let mut root = signed_in_super_admin(&dir, &daemon).await;
    // A fresh session, not elevated: changes will ask for re-authentication.
    let session = log_in(&root.anonymous, &mut root.person).await;
    let token = session.session().unwrap().expose().to_owned();
    let token = Some(token.as_str());

    let code = root.person.device.next_code();
    let answers = format!("{}\n{code}\n", root.person.password);
    let (status, out, err) = run(
        &dir,
        token,
        &answers,
        &["--json", "users", "create", "bob", "--role", "operator"],
    )
    .await;
    assert_eq!(status, 0, "{out}{err}");
    assert!(
        err.contains("re-authentication"),
        "it said why it asked: {err}"
    );
    let created = &json_lines(&out)[0];
    assert_eq!(created["user"]["role"], "USER_ROLE_OPERATOR", "{created}");
    assert!(created["enrollment_token"].as_str().unwrap().len() > 20);

    let (status, out, _) = run(&dir, token, "", &["--json", "users", "list"]).await;
    assert_eq!(status, 0);
    let names: Vec<_> = json_lines(&out)
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"bob".to_owned()) && names.contains(&"root".to_owned()),
        "{names:?}"
    );
    let _val = invite(&root.session, &root.anonymous, "val", pb::UserRole::Viewer).await;
    for (args, state) in [
        (
            vec!["users", "role", "bob", "admin"],
            "USER_STATE_ENROLLING",
        ),
        (
            vec!["users", "role", "val", "operator"],
            "USER_STATE_ACTIVE",
        ),
        (vec!["users", "disable", "val"], "USER_STATE_DISABLED"),
        (vec!["users", "enable", "val"], "USER_STATE_ACTIVE"),
        (vec!["users", "unlock", "val"], "USER_STATE_ACTIVE"),
    ] {
        let mut full = vec!["--json"];
        full.extend(args.iter().copied());
        let (status, out, err) = run(&dir, token, "", &full).await;
        assert_eq!(status, 0, "{args:?}: {out}{err}");
        assert_eq!(json_lines(&out)[0]["state"], state, "{args:?}: {out}");
    }
    let (status, out, _) = run(&dir, token, "", &["--json", "sessions", "list"]).await;
    assert_eq!(status, 0);
    assert!(
        json_lines(&out).iter().any(|s| s["current"] == true),
        "{out}"
    );
    let (status, _, err) = run(&dir, token, "", &["users", "delete", "bob"]).await;
    assert_eq!(status, 0, "{err}");
    let (status, out, _) = run(&dir, token, "", &["--json", "integrity", "findings"]).await;
    assert_eq!((status, out.as_str()), (0, ""));
    let (status, _, err) = run(&dir, token, "", &["integrity", "snapshots", "list"]).await;
    assert_eq!(status, 0, "{err}");

    // Exit codes.
    let (status, _, err) = run(&dir, None, "", &["whoami"]).await;
    assert_eq!(status, 4, "not logged in: {err}");
    let (status, _, err) = run(
        &dir,
        token,
        "",
        &["users", "create", "x", "--role", "wizard"],
    )
    .await;
    assert_eq!(status, 6, "refused input: {err}");
    let mut vic = invite(&root.session, &root.anonymous, "vic", pb::UserRole::Viewer).await;
    let viewer = log_in(&root.anonymous, &mut vic).await;
    let viewer_token = viewer.session().unwrap().expose().to_owned();
    let (status, _, err) = run(&dir, Some(&viewer_token), "", &["users", "list"]).await;
    assert_eq!(status, 5, "permission denied: {err}");
    let (status, _, err) = run(&dir, None, "", &["--expect-owner", "4242", "status"]).await;
    assert_eq!(status, 8, "untrusted socket: {err}");
    let elsewhere = DevDir::new();
    let (status, _, err) = run(&elsewhere, None, "", &["status"]).await;
    assert_eq!(status, 3, "no daemon: {err}");
    let (status, _, err) = run(&dir, None, "", &["no-such-command"]).await;
    assert_eq!(status, 2, "wrong command line: {err}");
    // Wrong passwords: after three the account waits a second before the
    // next attempt (three after five), which occcctl is told (throttled)
    // and exits 7 for; until then each is a plain refusal (4).
    let wrong = "not-the-password\n000000\n";
    let mut last = (0, String::new());
    for _ in 0..8 {
        let (status, _, err) = run(
            &dir,
            None,
            wrong,
            &["login", "--username", "vic", "--password-stdin"],
        )
        .await;
        last = (status, err);
        if status != 4 {
            break;
        }
    }
    assert_eq!(last.0, 7, "throttled: {}", last.1);

    // Completions and a man page, generated from the command line definition.
    let (status, out, _) = run(&dir, None, "", &["completions", "bash"]).await;
    assert!(
        status == 0 && out.contains("occcctl") && out.contains("verify-export"),
        "{out}"
    );
    let (status, out, _) = run(&dir, None, "", &["man"]).await;
    assert!(status == 0 && out.contains(".TH occcctl"), "{out}");
    let _ = Stdio::null();
}
