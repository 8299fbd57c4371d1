//! Issue #12: OpenClaw's config edited through occcd over the real socket —
//! reading with redaction, checked writes, optimistic concurrency, the
//! policy diff's super-admin rule, versions and restore, the file written
//! safely (symlinks, a full disk, kill -9), and the monitor's finding for
//! an edit made outside occcd.

mod editing;
mod faults;
mod monitor;
mod occcctl;
mod polling;

use std::path::{Path, PathBuf};

use occc_client::{OcccClient, proto as pb};
use occc_tests::{
    DevDir, RunningDaemon,
    people::{SignedIn, signed_in_super_admin},
};
use pb::config_client::ConfigClient;

/// A realistic `openclaw.json`: JSON5 with comments, trailing commas,
/// unquoted keys, a `${VAR}` reference and two literal secrets.
pub const SAMPLE: &str = r#"// OpenClaw gateway — managed through occcd
{
  gateway: {
    port: 18789,
    bind: "loopback", // never beyond this machine
    auth: { mode: "token", token: "gw_tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0" },
  },
  agents: {
    defaults: {
      workspace: "~/.openclaw/workspace",
      sandbox: { mode: "non-main", workspaceAccess: "ro" },
    },
  },
  channels: {
    telegram: { botToken: "${TELEGRAM_BOT_TOKEN}", dmPolicy: "pairing" },
  },
  models: { providers: { openai: { apiKey: "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6" } } },
  tools: { exec: { host: "sandbox", security: "allowlist", ask: "on-miss" } },
}
"#;

/// The literal secrets in [`SAMPLE`].
pub const SAMPLE_SECRETS: &[&str] = &[
    "gw_tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6",
];

/// occcd.toml for one container whose config is `path`; the monitor off
/// unless `integrity` is given (a whole `[integrity]` section, containers
/// excluded).
pub fn config_toml(path: &Path, extra: &str) -> String {
    format!(
        "[integrity]\nenabled = false\n[[integrity.containers]]\nname = \"openclaw-gateway\"\nopenclaw_config = {:?}\n{extra}",
        path.display().to_string()
    )
}

/// The Config client of `session`.
pub fn config(session: &OcccClient) -> ConfigClient<occc_client::SessionChannel> {
    session.config()
}

/// The file as `session` reads it.
pub async fn read(session: &OcccClient) -> pb::ConfigFile {
    config(session)
        .get_config(pb::GetConfigRequest::default())
        .await
        .expect("GetConfig")
        .into_inner()
}

/// Writes `text` over `expected` with `note`.
pub async fn write(
    session: &OcccClient,
    expected: &str,
    text: &str,
    note: &str,
) -> Result<pb::ConfigWritten, tonic::Status> {
    config(session)
        .update_config(pb::UpdateConfigRequest {
            container: String::new(),
            expected_version: expected.to_owned(),
            text: text.to_owned(),
            note: note.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A daemon editing `openclaw.json` in its folder (first holding `text`),
/// the monitor off, and its first super-admin, signed in and elevated.
pub async fn editing(text: &str) -> (DevDir, PathBuf, RunningDaemon, SignedIn) {
    let dir = DevDir::new();
    let path = dir.path().join("openclaw.json");
    std::fs::write(&path, text).expect("write openclaw.json");
    dir.set_config(&config_toml(&path, ""));
    let daemon = RunningDaemon::start(&dir).await;
    let root = signed_in_super_admin(&dir, &daemon).await;
    (dir, path, daemon, root)
}
