//! Configuration text: occcd's own TOML, and OpenClaw's JSON5 with the
//! policy diff between two versions.

use occcd::openclaw::{diff, document, policy};

/// occcd's TOML config, parsed and validated.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<occcd::config::Config>(text) {
        let _ = config.validate();
    }
}

/// Two OpenClaw JSON5 texts (split at the first 0xff byte; the second is
/// `{}` without one): both parsed, the line diff and the policy diff.
pub fn openclaw_config(data: &[u8]) {
    let (before, after) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(before), Ok(after)) = (std::str::from_utf8(before), std::str::from_utf8(after)) else {
        return;
    };
    let _ = diff::line_counts(before, after);
    let _ = diff::unified(before, after, "before", "after");
    if let (Ok(old), Ok(new)) = (document::parse(before), document::parse(after)) {
        let changes = policy::policy_diff(&old.value, &new.value);
        let _ = policy::loosens(&changes);
    }
}
