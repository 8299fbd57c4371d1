//! `occcctl env …` and `occcctl integrity pin|findings` against a real
//! container: start, status, logs, pin, stop — with `--json` from the API's
//! own messages.

use occc_tests::{
    DevDir, RunningDaemon,
    docker::{TestContainer, say_skipped, shared_socket},
    people::signed_in_super_admin,
};

use super::{Watch, integrity_config};

async fn occcctl(dir: &DevDir, token: &str, args: &[&str]) -> (i32, String) {
    let output = crate::auth::occcctl::occcctl(dir, args)
        .env("OCCC_SESSION_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn occcctl_starts_shows_logs_pins_and_stops_the_container() {
    let Some(socket) = shared_socket() else {
        return say_skipped("occcctl_starts_shows_logs_pins_and_stops_the_container");
    };
    let container = TestContainer::create(&socket, "cli-env", &TestContainer::hardened_flags());
    let name = container.name.as_str();
    let dir = DevDir::new();
    dir.set_config(&integrity_config(&socket, &[Watch::new(name)]));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    let token = root.session.session().unwrap().expose().to_owned();

    let (code, out) = occcctl(&dir, &token, &["--json", "env", "start", name]).await;
    assert_eq!(code, 0, "{out}");
    let started: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(started["state"], "running", "{out}");

    let (code, out) = occcctl(&dir, &token, &["env", "status", name]).await;
    assert!(code == 0 && out.contains("running"), "{out}");
    let (code, out) = occcctl(&dir, &token, &["env", "logs", name, "--tail", "5"]).await;
    assert_eq!(code, 0, "{out}");

    let (code, out) = occcctl(&dir, &token, &["--json", "integrity", "pin", name]).await;
    assert_eq!(code, 0, "{out}");
    let baseline: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(baseline["container"], name);
    assert!(
        !baseline["image_files"].as_array().unwrap().is_empty(),
        "{out}"
    );

    let (code, out) = occcctl(&dir, &token, &["--json", "env", "stop", name]).await;
    assert_eq!(code, 0, "{out}");
    let stopped: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_ne!(stopped["state"], "running", "{out}");
    // A container occcd does not watch: refused input.
    let (code, out) = occcctl(&dir, &token, &["env", "status", "not-watched"]).await;
    assert_eq!(code, 6, "{out}");
}
