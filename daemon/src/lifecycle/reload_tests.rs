use super::*;
use crate::integrity::config::Response;

#[test]
fn an_unchanged_file_changes_nothing() {
    let config = Config::default();
    assert_eq!(plan(&config, &config.clone()), ReloadPlan::default());
}

#[test]
fn reloadable_settings_are_applied_and_the_rest_named_for_a_restart() {
    let running = Config::default();
    let mut wanted = running.clone();
    wanted.log.filter = "debug".to_owned();
    wanted.integrity.poll_interval_ms = 2_000;
    wanted.integrity.response.high = Response::Quarantine;
    wanted.integrity.start_policy.refuse_root = false;
    wanted.auth.pam.service = "occc-biometric".to_owned();
    wanted.socket.path = "/run/elsewhere.sock".into();
    wanted.socket.group = Some("occc".to_owned());
    wanted.auth.idle_timeout_secs = 60;
    wanted.integrity.containers.clear();
    let plan = plan(&running, &wanted);
    let keys = |changes: &[Change]| -> Vec<String> {
        changes.iter().map(|change| change.key.clone()).collect()
    };
    assert_eq!(
        keys(&plan.applied),
        [
            "auth.pam.service",
            "integrity.poll_interval_ms",
            "integrity.response.high",
            "integrity.start_policy.refuse_root",
            "log.filter",
        ]
    );
    assert_eq!(
        keys(&plan.refused),
        [
            "auth.idle_timeout_secs",
            "integrity.containers",
            "socket.group",
            "socket.path",
        ]
    );
}

#[test]
fn only_the_reloadable_part_is_merged() {
    let running = Config::default();
    let mut wanted = running.clone();
    wanted.log.filter = "debug".to_owned();
    wanted.auth.pam.max_per_peer = 3;
    wanted.auth.idle_timeout_secs = 60;
    wanted.store.database = "/elsewhere.db".into();
    let next = merged(&running, &wanted);
    assert_eq!(next.log.filter, "debug");
    assert_eq!(next.auth.pam.max_per_peer, 3);
    assert_eq!(next.auth.idle_timeout_secs, running.auth.idle_timeout_secs);
    assert_eq!(next.store.database, running.store.database);
}

#[test]
fn a_prefix_does_not_match_a_longer_sibling_key() {
    assert!(is_reloadable("auth.pam.timeout_ms"));
    assert!(!is_reloadable("auth.pamphlet"));
    assert!(!is_reloadable("log.format"));
    assert!(!is_reloadable("integrity.poll_interval_ms_extra"));
}

#[test]
fn the_summary_names_what_needs_a_restart() {
    let change = |key: &str| Change {
        key: key.to_owned(),
        was: None,
        now: None,
    };
    let plan = ReloadPlan {
        applied: vec![change("log.filter")],
        refused: vec![change("socket.path")],
    };
    assert_eq!(
        summarize(&plan),
        "reloaded 1 setting(s); 1 need a restart: socket.path"
    );
}

#[test]
fn each_change_shows_its_old_and_new_value_so_a_loosening_is_visible() {
    let running = Config::default();
    let mut wanted = running.clone();
    wanted.integrity.response.critical = Response::Record;
    wanted.auth.pam.allow_root_peer = true;
    let plan = plan(&running, &wanted);
    let shown: Vec<String> = plan.applied.iter().map(Change::to_string).collect();
    assert_eq!(
        shown,
        [
            "auth.pam.allow_root_peer: false -> true",
            "integrity.response.critical: \"quarantine\" -> \"record\"",
        ]
    );
}

#[test]
fn a_url_is_never_shown_it_may_carry_credentials() {
    let running = Config::default();
    let mut wanted = running.clone();
    wanted.events.webhook.url = "https://user:hunter2@alerts.example/".into();
    let plan = plan(&running, &wanted);
    let shown = format!("{:?}", plan.refused);
    assert!(shown.contains("events.webhook.url"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
