//! The security-relevant settings of OpenClaw's `openclaw.json` and how an
//! edit moves them: the policy diff a person confirms and a super-admin
//! must sign off when it loosens anything.
//!
//! Invariant: every setting below is read from the parsed document by its
//! path and judged by a pure rule; an edit *loosens* the policy when some
//! setting that was safe (or absent, i.e. OpenClaw's safe default) becomes
//! unsafe, an unsafe one takes another unsafe value, or an explicitly safe one
//! is removed (OpenClaw's default then applies); any key whose name
//! starts with `dangerously`, anywhere in the document, set to anything but
//! `false` or `null`, is unsafe. Key names follow OpenClaw's config reference
//! as of the release named in [`SCHEMA_RELEASE`].

use std::collections::BTreeMap;

use serde_json::Value;

/// The OpenClaw release whose key names these rules (and the shipped
/// schema) describe.
pub const SCHEMA_RELEASE: &str = "2026.2";

/// How deep the search for `dangerously…` keys goes (the parser bounds
/// nesting well below this).
const MAX_DEPTH: usize = 64;

/// One security-relevant setting that an edit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// Dotted path, e.g. `gateway.bind`.
    pub path: String,
    /// The value before, as JSON text; `None` when absent.
    pub before: Option<String>,
    /// The value after; `None` when removed.
    pub after: Option<String>,
    /// What the unsafe value allows, when `after` is unsafe.
    pub risk: Option<&'static str>,
    /// True when the edit makes the policy weaker here.
    pub loosens: bool,
}

/// A setting occcd judges: where it is and when its value is unsafe.
struct Rule {
    path: &'static [&'static str],
    unsafe_when: fn(&Value) -> bool,
    risk: &'static str,
}

fn is_str(value: &Value, unsafe_values: &[&str]) -> bool {
    value.as_str().is_some_and(|s| unsafe_values.contains(&s))
}

fn not_str(value: &Value, safe_values: &[&str]) -> bool {
    !value.as_str().is_some_and(|s| safe_values.contains(&s))
}

fn is_true(value: &Value) -> bool {
    value.as_bool() == Some(true)
}

/// Host paths a sandbox must never see.
const SECRET_BINDS: &[&str] = &[
    "docker.sock",
    "/etc/shadow",
    "/etc/sudoers",
    "/root",
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    "/proc",
    "/sys",
];

fn binds_a_secret(value: &Value) -> bool {
    value.as_array().is_some_and(|binds| {
        binds.iter().any(|bind| {
            let source = bind
                .as_str()
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or("");
            source == "/" || SECRET_BINDS.iter().any(|secret| source.contains(secret))
        })
    })
}

const RULES: &[Rule] = &[
    Rule {
        path: &["gateway", "bind"],
        unsafe_when: |v| not_str(v, &["loopback"]),
        risk: "the gateway listens beyond this machine",
    },
    Rule {
        path: &["gateway", "auth", "mode"],
        unsafe_when: |v| is_str(v, &["none"]),
        risk: "the gateway accepts clients without authentication",
    },
    Rule {
        path: &["gateway", "tailscale", "mode"],
        unsafe_when: |v| is_str(v, &["funnel"]),
        risk: "the gateway is published to the internet (Tailscale Funnel)",
    },
    Rule {
        path: &["gateway", "controlUi", "allowInsecureAuth"],
        unsafe_when: is_true,
        risk: "the control UI accepts authentication over insecure channels",
    },
    Rule {
        path: &["agents", "defaults", "sandbox", "mode"],
        unsafe_when: |v| is_str(v, &["off"]),
        risk: "agents run tools outside the sandbox",
    },
    Rule {
        path: &["agents", "defaults", "sandbox", "workspaceAccess"],
        unsafe_when: |v| is_str(v, &["rw"]),
        risk: "the sandbox can write the workspace",
    },
    Rule {
        path: &["agents", "defaults", "sandbox", "docker", "binds"],
        unsafe_when: binds_a_secret,
        risk: "the sandbox sees the Docker socket or a secret host path",
    },
    Rule {
        path: &["tools", "exec", "host"],
        unsafe_when: |v| is_str(v, &["gateway", "node"]),
        risk: "commands run on the gateway or node host, not in the sandbox",
    },
    Rule {
        path: &["tools", "exec", "security"],
        unsafe_when: |v| is_str(v, &["full"]),
        risk: "any command may run",
    },
    Rule {
        path: &["tools", "exec", "ask"],
        unsafe_when: |v| is_str(v, &["off"]),
        risk: "commands run without asking",
    },
    Rule {
        path: &["logging", "redactSensitive"],
        unsafe_when: |v| is_str(v, &["off"]),
        risk: "secrets are written to OpenClaw's logs",
    },
];

fn at<'a>(config: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(config, |value, key| value.get(key))
}

/// Every security-relevant setting present in `config`: path → (value as
/// JSON text, the risk when unsafe).
fn settings(config: &Value) -> BTreeMap<String, (String, Option<&'static str>)> {
    let mut found = BTreeMap::new();
    for rule in RULES {
        if let Some(value) = at(config, rule.path) {
            let risk = (rule.unsafe_when)(value).then_some(rule.risk);
            found.insert(rule.path.join("."), (value.to_string(), risk));
        }
    }
    let elevated = at(config, &["tools", "elevated"]);
    if let Some(elevated) = elevated {
        let enabled = elevated.get("enabled").is_some_and(is_true);
        let anyone = elevated
            .get("allowFrom")
            .and_then(Value::as_array)
            .is_some_and(|from| from.iter().any(|f| f.as_str() == Some("*")));
        let risk = (enabled && anyone).then_some("anyone may run elevated tools");
        found.insert("tools.elevated".into(), (elevated.to_string(), risk));
    }
    if let Some(plugins) = at(config, &["plugins"]) {
        let enabled = plugins.get("enabled").is_some_and(is_true);
        let allowed = plugins.get("allow").is_some_and(|a| !a.is_null());
        let risk = (enabled && !allowed).then_some("any installed plugin loads");
        found.insert("plugins".into(), (plugins.to_string(), risk));
    }
    if let Some(channels) = at(config, &["channels"]).and_then(Value::as_object) {
        for (channel, settings) in channels {
            for policy in ["dmPolicy", "groupPolicy"] {
                if let Some(value) = settings.get(policy) {
                    let risk = is_str(value, &["open"]).then_some("anyone may message the agent");
                    found.insert(
                        format!("channels.{channel}.{policy}"),
                        (value.to_string(), risk),
                    );
                }
            }
        }
    }
    let mut path = Vec::new();
    dangerous_keys(config, &mut path, &mut found);
    found
}

fn dangerous_keys(
    value: &Value,
    path: &mut Vec<String>,
    found: &mut BTreeMap<String, (String, Option<&'static str>)>,
) {
    if path.len() >= MAX_DEPTH {
        return;
    }
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, child) in object {
        path.push(key.clone());
        if key.starts_with("dangerously") {
            let risk = !(child.is_null() || child.as_bool() == Some(false));
            found.insert(
                path.join("."),
                (
                    child.to_string(),
                    risk.then_some("a setting OpenClaw itself calls dangerous"),
                ),
            );
        } else {
            dangerous_keys(child, path, found);
        }
        path.pop();
    }
}

/// Every security-relevant setting that differs between `before` and
/// `after`, by path.
#[must_use]
pub fn policy_diff(before: &Value, after: &Value) -> Vec<PolicyChange> {
    let (old, new) = (settings(before), settings(after));
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (was, is) = (old.get(path), new.get(path));
            if was.map(|w| &w.0) == is.map(|i| &i.0) {
                return None;
            }
            // A safe setting removed falls back to OpenClaw's default, which
            // occcd does not vouch for: counted as loosening.
            let risk = match (was, is) {
                (_, Some((_, risk))) => *risk,
                (Some((_, None)), None) => Some("removed: OpenClaw's default applies"),
                _ => None,
            };
            Some(PolicyChange {
                path: path.clone(),
                before: was.map(|(value, _)| value.clone()),
                after: is.map(|(value, _)| value.clone()),
                risk,
                loosens: risk.is_some(),
            })
        })
        .collect()
}

/// True when any change in `changes` loosens the policy.
#[must_use]
pub fn loosens(changes: &[PolicyChange]) -> bool {
    changes.iter().any(|change| change.loosens)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(changes: &[PolicyChange]) -> Vec<(&str, bool)> {
        changes
            .iter()
            .map(|c| (c.path.as_str(), c.loosens))
            .collect()
    }

    #[test]
    fn every_listed_setting_loosens_when_it_turns_unsafe() {
        let safe = json!({
            "gateway": {"bind": "loopback", "auth": {"mode": "token"},
                        "tailscale": {"mode": "serve"}, "controlUi": {"allowInsecureAuth": false}},
            "agents": {"defaults": {"sandbox": {"mode": "all", "workspaceAccess": "ro",
                                                "docker": {"binds": ["/srv/data:/data:ro"]}}}},
            "tools": {"exec": {"host": "sandbox", "security": "allowlist", "ask": "on-miss"},
                      "elevated": {"enabled": true, "allowFrom": ["ada"]}},
            "channels": {"telegram": {"dmPolicy": "pairing", "groupPolicy": "allowlist"}},
            "plugins": {"enabled": true, "allow": ["voice"]},
            "logging": {"redactSensitive": "tools"},
        });
        let unsafe_ = json!({
            "gateway": {"bind": "lan", "auth": {"mode": "none"},
                        "tailscale": {"mode": "funnel"}, "controlUi": {"allowInsecureAuth": true}},
            "agents": {"defaults": {"sandbox": {"mode": "off", "workspaceAccess": "rw",
                                                "docker": {"binds": ["/var/run/docker.sock:/var/run/docker.sock"]}}}},
            "tools": {"exec": {"host": "gateway", "security": "full", "ask": "off"},
                      "elevated": {"enabled": true, "allowFrom": ["*"]}},
            "channels": {"telegram": {"dmPolicy": "open", "groupPolicy": "open"}},
            "plugins": {"enabled": true},
            "logging": {"redactSensitive": "off"},
        });
        assert!(policy_diff(&safe, &safe).is_empty());
        let changes = policy_diff(&safe, &unsafe_);
        assert_eq!(
            paths(&changes),
            [
                ("agents.defaults.sandbox.docker.binds", true),
                ("agents.defaults.sandbox.mode", true),
                ("agents.defaults.sandbox.workspaceAccess", true),
                ("channels.telegram.dmPolicy", true),
                ("channels.telegram.groupPolicy", true),
                ("gateway.auth.mode", true),
                ("gateway.bind", true),
                ("gateway.controlUi.allowInsecureAuth", true),
                ("gateway.tailscale.mode", true),
                ("logging.redactSensitive", true),
                ("plugins", true),
                ("tools.elevated", true),
                ("tools.exec.ask", true),
                ("tools.exec.host", true),
                ("tools.exec.security", true),
            ]
        );
        assert!(changes.iter().all(|c| c.risk.is_some()));
        // The way back tightens: every path changes, none loosens.
        let back = policy_diff(&unsafe_, &safe);
        assert_eq!(back.len(), 15);
        assert!(!loosens(&back));
    }

    #[test]
    fn dangerous_keys_anywhere_and_removed_safe_settings_loosen() {
        let before = json!({"gateway": {"bind": "loopback"}, "hooks": {"x": {"dangerouslyAllowAll": false}}});
        let after = json!({"hooks": {"x": {"dangerouslyAllowAll": true}},
                           "deep": {"a": {"b": {"dangerouslyDisableChecks": "yes"}}}});
        let changes = policy_diff(&before, &after);
        assert_eq!(
            paths(&changes),
            [
                ("deep.a.b.dangerouslyDisableChecks", true),
                ("gateway.bind", true),
                ("hooks.x.dangerouslyAllowAll", true),
            ]
        );
        assert_eq!(changes[1].after, None, "removed");
        // Unrelated edits and a key set to false are no policy change.
        let quiet =
            json!({"hooks": {"x": {"dangerouslyAllowAll": false}}, "ui": {"theme": "dark"}});
        assert!(!loosens(&policy_diff(&json!({}), &quiet)));
        // An unsafe value swapped for another unsafe one still needs sign-off.
        let lan = json!({"gateway": {"bind": "lan"}});
        let custom = json!({"gateway": {"bind": "custom"}});
        assert!(loosens(&policy_diff(&lan, &custom)));
    }

    #[test]
    fn secret_binds_are_recognised_by_their_host_side() {
        for bad in [
            "/:/host",
            "/home/ada/.ssh:/keys",
            "/run/docker.sock:/d",
            "/etc/shadow:/s:ro",
        ] {
            assert!(binds_a_secret(&json!([bad])), "{bad}");
        }
        for fine in ["/srv/data:/data", "/home/ada/work:/work:ro"] {
            assert!(!binds_a_secret(&json!([fine])), "{fine}");
        }
    }
}
