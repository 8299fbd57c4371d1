//! Tests of `policy`: which edits loosen OpenClaw's security settings.

#[test]
fn shown_values_carry_only_what_is_judged_and_no_secret() {
    let before = json!({"plugins": {"enabled": true, "allow": ["voice"]}});
    let after = json!({
        "plugins": {"enabled": true, "entries": {"voice": {"config": {"authToken": "twilio-secret"}}}},
        "hooks": {"dangerouslyAllowFrom": {"token": "ghp_0123456789abcdefghij"}},
        "tools": {"elevated": {"enabled": true, "allowFrom": {"whatsapp": ["*"]}}},
    });
    let changes = policy_diff(&before, &after);
    let shown = format!("{changes:?}");
    assert!(
        !shown.contains("twilio-secret") && !shown.contains("ghp_"),
        "{shown}"
    );
    assert_eq!(
        paths(&changes),
        [
            ("hooks.dangerouslyAllowFrom", true),
            ("plugins", true),
            ("tools.elevated", true),
        ]
    );
}

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
                                            "docker": {"binds": []}}}},
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
    let before =
        json!({"gateway": {"bind": "loopback"}, "hooks": {"x": {"dangerouslyAllowAll": false}}});
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
    let quiet = json!({"hooks": {"x": {"dangerouslyAllowAll": false}}, "ui": {"theme": "dark"}});
    assert!(!loosens(&policy_diff(&json!({}), &quiet)));
    // An unsafe value swapped for another unsafe one still needs sign-off.
    let lan = json!({"gateway": {"bind": "lan"}});
    let custom = json!({"gateway": {"bind": "custom"}});
    assert!(loosens(&policy_diff(&lan, &custom)));
}

#[test]
fn every_bind_is_a_decision_however_it_is_spelled() {
    for bind in ["/:/host", "//run:/r", "${HOME}:/h", "/srv/data:/data:ro"] {
        assert!(binds_anything(&json!([bind])), "{bind}");
    }
    assert!(!binds_anything(&json!([])));
}

#[test]
fn per_agent_and_per_account_overrides_and_includes_are_judged() {
    let before = json!({"agents": {"list": [{"id": "main"}]}});
    let after = json!({
        "agents": {"list": [{"id": "main", "sandbox": {"mode": "off"},
                             "tools": {"exec": {"security": "full"},
                                       "elevated": {"enabled": true, "allowFrom": {"telegram": ["*"]}}},
                             "hooks": [{"dangerouslyRun": true}]}]},
        "channels": {"slack": {"accounts": {"work": {"dmPolicy": "open"}}, "allowFrom": ["*"]}},
        "$include": "./more.json5",
    });
    let changes = policy_diff(&before, &after);
    assert_eq!(
        paths(&changes),
        [
            ("$include", true),
            ("agents.list[0].hooks[0].dangerouslyRun", true),
            ("agents.list[0].sandbox.mode", true),
            ("agents.list[0].tools.elevated", true),
            ("agents.list[0].tools.exec.security", true),
            ("channels.slack.accounts.work.dmPolicy", true),
            ("channels.slack.allowFrom", true),
        ]
    );
    // A repeated id does not hide an unsafe entry; a value from the
    // environment cannot be judged; dotted keys do not collide.
    let twice = json!({"agents": {"list": [{"id": "main", "sandbox": {"mode": "off"}},
                                           {"id": "main", "sandbox": {"mode": "all"}}]}});
    assert!(loosens(&policy_diff(&json!({}), &twice)));
    let env = json!({"agents": {"defaults": {"sandbox": {"mode": "${MODE}"}}}});
    assert!(loosens(&policy_diff(&json!({}), &env)));
    let dotted = json!({"a": {"b": {"dangerouslyX": true}}, "a.b": {"dangerouslyX": false}});
    assert_eq!(
        paths(&policy_diff(&json!({}), &dotted)),
        [
            ("[\"a.b\"].dangerouslyX", false),
            ("a.b.dangerouslyX", true)
        ]
    );
    // Plugins load by default: dropping the allow list loosens.
    let allowed = json!({"plugins": {"allow": ["voice"]}});
    let any = json!({"plugins": {"entries": {}}});
    assert!(loosens(&policy_diff(&allowed, &any)));
}
