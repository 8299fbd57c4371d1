//! Reloading the config file on SIGHUP (`systemctl reload occcd`): what may
//! change while serving is applied, the rest is refused with the reason.
//!
//! Invariant: a reload applies only settings listed in [`RELOADABLE`] (the
//! log filter, the integrity monitor's intervals and policies, the PAM
//! settings), and only from a file that parses and validates as a whole;
//! every other difference is named in the log and the audit entry and left
//! as it was until a restart. A file that fails changes nothing.

use std::sync::Arc;

use toml::Value;

use super::domain::Domain;
use crate::{
    audit::{Actor, AuditEvent},
    config::{Config, ConfigError},
    logging::LogFilter,
};

/// Dotted keys (or key prefixes ending in `.`) a reload applies.
pub const RELOADABLE: &[&str] = &[
    "log.filter",
    "integrity.poll_interval_ms",
    "integrity.hash_interval_ms",
    "integrity.response.",
    "integrity.start_policy.",
    "auth.pam.",
];

/// One changed setting: its dotted key, and its value before and after
/// (TOML; `None` when absent). The config holds no secret (the key's path,
/// never the key), so values may be logged and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Dotted key, e.g. `integrity.response.critical`.
    pub key: String,
    /// The value in force before.
    pub was: Option<String>,
    /// The value in the file.
    pub now: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "(unset)".to_owned());
        write!(
            f,
            "{}: {} -> {}",
            self.key,
            show(&self.was),
            show(&self.now)
        )
    }
}

/// What a reload would do: the changed settings, split by whether they can
/// change while the daemon serves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Changed settings a reload applies.
    pub applied: Vec<Change>,
    /// Changed settings that need a restart.
    pub refused: Vec<Change>,
}

/// Compares the running config with the one just read.
#[must_use]
pub fn plan(running: &Config, wanted: &Config) -> ReloadPlan {
    let mut changed = Vec::new();
    match (Value::try_from(running), Value::try_from(wanted)) {
        (Ok(old), Ok(new)) => differences("", &old, &new, &mut changed),
        // Not expected (both came from TOML): treat everything as changed.
        _ => changed.push(Change {
            key: "(whole file)".to_owned(),
            was: None,
            now: None,
        }),
    }
    let mut plan = ReloadPlan::default();
    for change in changed {
        if is_reloadable(&change.key) {
            plan.applied.push(change);
        } else {
            plan.refused.push(change);
        }
    }
    plan
}

fn is_reloadable(key: &str) -> bool {
    RELOADABLE
        .iter()
        .any(|allowed| match allowed.strip_suffix('.') {
            Some(section) => key.starts_with(allowed) || key == section,
            None => key == *allowed,
        })
}

/// Collects the settings whose values differ (tables are descended,
/// anything else — arrays included — compared whole).
fn differences(prefix: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    let shown = |key: &str, value: Option<&Value>| {
        value.map(|value| {
            // A URL may carry credentials (start-up refuses them): never logged.
            if key.ends_with("url") {
                return "(a URL, not shown)".to_owned();
            }
            let text = value.to_string();
            // An array of tables (the watched containers) is named, not shown.
            if text.len() > 120 {
                format!("({} characters)", text.len())
            } else {
                text
            }
        })
    };
    match (old, new) {
        (Value::Table(old), Value::Table(new)) => {
            let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (old.get(key), new.get(key)) {
                    (Some(a), Some(b)) => differences(&path, a, b, out),
                    (a, b) => out.push(Change {
                        was: shown(&path, a),
                        now: shown(&path, b),
                        key: path,
                    }),
                }
            }
        }
        (a, b) if a != b => out.push(Change {
            key: prefix.to_owned(),
            was: shown(prefix, Some(a)),
            now: shown(prefix, Some(b)),
        }),
        _ => {}
    }
}

/// The config in force after applying `plan`'s reloadable part of `wanted`
/// to `running`.
fn merged(running: &Config, wanted: &Config) -> Config {
    let mut next = running.clone();
    next.log.filter.clone_from(&wanted.log.filter);
    next.integrity.poll_interval_ms = wanted.integrity.poll_interval_ms;
    next.integrity.hash_interval_ms = wanted.integrity.hash_interval_ms;
    next.integrity.response = wanted.integrity.response.clone();
    next.integrity.start_policy = wanted.integrity.start_policy.clone();
    next.auth.pam = wanted.auth.pam.clone();
    next
}

/// Rereads the config file and applies it to a running daemon.
pub struct Reloader {
    running: Config,
    read: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
    log_filter: Option<LogFilter>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for a daemon started with `running`, rereading through
    /// `read` (the same flags and file as at start).
    pub fn new(
        running: Config,
        read: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
        log_filter: Option<LogFilter>,
    ) -> Self {
        Self {
            running,
            read,
            log_filter,
        }
    }

    /// Rereads and applies; logs and audits what changed, what needs a
    /// restart, or why nothing did. Returns a one-line summary.
    pub async fn reload(&mut self, domain: &Domain) -> String {
        let wanted = (self.read)()
            .and_then(|config| config.validate().map(|()| config))
            // The first line only: TOML's message quotes the line it failed
            // on, which may hold what should not be logged or audited.
            .map_err(|err| {
                err.to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .and_then(|config| {
                // A filter that does not parse fails the whole reload.
                crate::logging::check_filter(&config.log)
                    .map(|()| config)
                    .map_err(|err| format!("log.filter: {err}"))
            });
        let (event, summary) = match wanted {
            Err(err) => {
                tracing::error!(error = %err, "reload refused: the config file is unusable; nothing changed");
                let summary = format!("reload failed, nothing changed: {err}");
                let event = AuditEvent::ConfigReloaded {
                    applied: Vec::new(),
                    refused: Vec::new(),
                    error: Some(err),
                };
                (event, summary)
            }
            Ok(wanted) => {
                let plan = plan(&self.running, &wanted);
                self.apply(&plan, &wanted, domain);
                let summary = summarize(&plan);
                (
                    AuditEvent::ConfigReloaded {
                        applied: plan.applied.iter().map(Change::to_string).collect(),
                        refused: plan.refused.iter().map(Change::to_string).collect(),
                        error: None,
                    },
                    summary,
                )
            }
        };
        domain.audit.record_or_log(Actor::daemon(), event).await;
        summary
    }

    fn apply(&mut self, plan: &ReloadPlan, wanted: &Config, domain: &Domain) {
        for change in &plan.refused {
            tracing::warn!(
                setting = %change,
                "not reloaded: this setting changes only at a restart (systemctl restart occcd)"
            );
        }
        if plan.applied.is_empty() {
            tracing::info!("reload: no reloadable setting changed");
            return;
        }
        let next = merged(&self.running, wanted);
        if let Some(filter) = &self.log_filter
            && next.log.filter != self.running.log.filter
        {
            match filter.reload(&next.log) {
                Ok(directive) => tracing::info!(%directive, "log filter reloaded"),
                Err(err) => tracing::error!(error = %err, "log filter not reloaded"),
            }
        }
        if next.auth.pam != self.running.auth.pam {
            domain.auth.pam().reconfigure(&next.auth.pam);
        }
        if Arc::clone(&domain.monitor).retune(&next.integrity) {
            tracing::info!("integrity intervals and policies reloaded");
        }
        for change in &plan.applied {
            tracing::info!(setting = %change, "reloaded");
        }
        self.running = next;
    }
}

fn summarize(plan: &ReloadPlan) -> String {
    match (plan.applied.len(), plan.refused.len()) {
        (0, 0) => "reloaded: nothing changed".to_owned(),
        (applied, 0) => format!("reloaded {applied} setting(s)"),
        (applied, refused) => format!(
            "reloaded {applied} setting(s); {refused} need a restart: {}",
            plan.refused
                .iter()
                .map(|change| change.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
