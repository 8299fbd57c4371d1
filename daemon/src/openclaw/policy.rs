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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyChange {
    /// Dotted path, e.g. `gateway.bind`.
    pub path: String,
    /// The value before, as JSON text; `None` when absent.
    pub before: Option<String>,
    /// The value after; `None` when removed.
    pub after: Option<String>,
    /// What the unsafe value allows, when `after` is unsafe.
    pub risk: Option<String>,
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

/// Any host path bound into the sandbox: a list of names to deny is easy to
/// get around (`/run`, `//`, `${VAR}`), so every bind is a decision.
fn binds_anything(value: &Value) -> bool {
    value.as_array().is_some_and(|binds| !binds.is_empty())
}

/// Sandbox settings an agent has, by default (`agents.defaults`) or of its
/// own (`agents.list[…]`).
const SANDBOX_RULES: &[Rule] = &[
    Rule {
        path: &["sandbox", "mode"],
        unsafe_when: |v| is_str(v, &["off"]),
        risk: "agents run tools outside the sandbox",
    },
    Rule {
        path: &["sandbox", "workspaceAccess"],
        unsafe_when: |v| is_str(v, &["rw"]),
        risk: "the sandbox can write the workspace",
    },
    Rule {
        path: &["sandbox", "docker", "binds"],
        unsafe_when: binds_anything,
        risk: "the sandbox sees host paths",
    },
];

/// How commands run: globally (`tools.exec`) or for one agent.
const EXEC_RULES: &[Rule] = &[
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
];

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
        path: &["logging", "redactSensitive"],
        unsafe_when: |v| is_str(v, &["off"]),
        risk: "secrets are written to OpenClaw's logs",
    },
];

fn at<'a>(config: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(config, |value, key| value.get(key))
}

type Settings = BTreeMap<String, (String, Option<&'static str>)>;

/// A key as one step of a path: `.key` when plain, `["k.e y"]` otherwise
/// (so no two places share a path).
fn step(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
    if plain {
        format!(".{key}")
    } else {
        format!("[{}]", Value::String(key.to_owned()))
    }
}

/// A value OpenClaw fills in from its environment (`${VAR}`): occcd
/// cannot say what it will be.
fn from_environment(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.contains("${"))
}

fn apply(rules: &[Rule], config: &Value, prefix: &str, found: &mut Settings) {
    for rule in rules {
        if let Some(value) = at(config, rule.path) {
            let risk = if from_environment(value) {
                Some("set from OpenClaw's environment: occcd cannot judge it")
            } else {
                (rule.unsafe_when)(value).then_some(rule.risk)
            };
            let path = rule.path.join(".");
            let path = if prefix.is_empty() {
                path
            } else {
                format!("{prefix}.{path}")
            };
            found.insert(path, (value.to_string(), risk));
        }
    }
}

/// True when `from` (a list, or a list per channel) holds `"*"`.
fn lets_anyone(from: Option<&Value>) -> bool {
    from.is_some_and(|from| {
        let lists: Vec<&Value> = match from {
            Value::Object(per_channel) => per_channel.values().collect(),
            other => vec![other],
        };
        lists.iter().any(|list| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|f| f.as_str() == Some("*")))
        })
    })
}

/// `tools.elevated` of `tools` (global or an agent's), under `prefix`.
fn elevated(tools: &Value, prefix: &str, found: &mut Settings) {
    let Some(elevated) = tools.get("elevated") else {
        return;
    };
    let enabled = elevated.get("enabled").is_some_and(is_true);
    let allow_from = elevated.get("allowFrom");
    let risk = (enabled && lets_anyone(allow_from)).then_some("anyone may run elevated tools");
    // Only the two keys judged: the rest is not policy (and may be secret).
    let shown = serde_json::json!({"enabled": elevated.get("enabled"), "allowFrom": allow_from});
    found.insert(format!("{prefix}tools.elevated"), (shown.to_string(), risk));
}

/// Who may message the agent on a channel, or on one account of it.
fn messaging(settings: &Value, prefix: &str, found: &mut Settings) {
    for policy in ["dmPolicy", "groupPolicy"] {
        if let Some(value) = settings.get(policy) {
            let risk = is_str(value, &["open"]).then_some("anyone may message the agent");
            found.insert(format!("{prefix}.{policy}"), (value.to_string(), risk));
        }
    }
    for list in ["allowFrom", "groupAllowFrom"] {
        if let Some(value) = settings.get(list) {
            let risk = lets_anyone(Some(value)).then_some("anyone may message the agent");
            let shown = super::redact::redact_value(value).to_string();
            found.insert(format!("{prefix}.{list}"), (shown, risk));
        }
    }
}

/// Every security-relevant setting present in `config`: path → (value as
/// JSON text, the risk when unsafe).
fn settings(config: &Value) -> Settings {
    let mut found = BTreeMap::new();
    apply(RULES, config, "", &mut found);
    apply(EXEC_RULES, config, "", &mut found);
    if let Some(tools) = config.get("tools") {
        elevated(tools, "", &mut found);
    }
    if let Some(defaults) = at(config, &["agents", "defaults"]) {
        apply(SANDBOX_RULES, defaults, "agents.defaults", &mut found);
    }
    let agents = at(config, &["agents", "list"]).and_then(Value::as_array);
    for (index, agent) in agents.into_iter().flatten().enumerate() {
        // By position: ids may repeat, and one must not hide another.
        let prefix = format!("agents.list[{index}]");
        apply(SANDBOX_RULES, agent, &prefix, &mut found);
        apply(EXEC_RULES, agent, &prefix, &mut found);
        if let Some(tools) = agent.get("tools") {
            elevated(tools, &format!("{prefix}."), &mut found);
        }
    }
    if let Some(plugins) = at(config, &["plugins"]) {
        // Plugins load unless turned off; without an allow list, any does.
        let enabled = plugins.get("enabled").and_then(Value::as_bool) != Some(false);
        let allowed = plugins.get("allow").is_some_and(|a| !a.is_null());
        let risk = (enabled && !allowed).then_some("any installed plugin loads");
        // Plugin entries carry their own config (API keys among it): only
        // the judged keys are shown.
        let shown =
            serde_json::json!({"enabled": plugins.get("enabled"), "allow": plugins.get("allow")});
        found.insert("plugins".into(), (shown.to_string(), risk));
    }
    if let Some(channels) = at(config, &["channels"]).and_then(Value::as_object) {
        for (channel, settings) in channels {
            let channel = format!("channels{}", step(channel));
            messaging(settings, &channel, &mut found);
            let accounts = settings.get("accounts").and_then(Value::as_object);
            for (account, settings) in accounts.into_iter().flatten() {
                let account = format!("{channel}.accounts{}", step(account));
                messaging(settings, &account, &mut found);
            }
        }
    }
    let mut path = Vec::new();
    marked_keys(config, &mut path, &mut found);
    found
}

/// Keys judged wherever they are, arrays included: any `dangerously…` key
/// not `false`/`null`, and any `$include` (occcd checks the file it edits,
/// not the files it pulls in).
fn marked_keys(value: &Value, path: &mut Vec<String>, found: &mut Settings) {
    if path.len() >= MAX_DEPTH {
        return;
    }
    // (the key, the path step it makes, the value)
    let children: Vec<(&str, String, &Value)> = match value {
        Value::Object(object) => object
            .iter()
            .map(|(k, v)| (k.as_str(), step(k), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| ("", format!("[{i}]"), v))
            .collect(),
        _ => return,
    };
    for (key, step, child) in children {
        path.push(step);
        let shown = || super::redact::redact_value(child).to_string();
        let name = || path.concat().trim_start_matches('.').to_owned();
        if key.starts_with("dangerously") {
            let risk = !(child.is_null() || child.as_bool() == Some(false));
            found.insert(
                name(),
                (
                    shown(),
                    risk.then_some("a setting OpenClaw itself calls dangerous"),
                ),
            );
        } else if key == "$include" {
            found.insert(
                name(),
                (shown(), Some("the included files are not checked by occcd")),
            );
        } else {
            marked_keys(child, path, found);
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
                risk: risk.map(str::to_owned),
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
#[path = "policy_tests.rs"]
mod tests;
