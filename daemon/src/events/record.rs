//! One security event as every output sends it: a committed audit entry with
//! stable field names (docs/events.md), a severity, and the id receivers
//! deduplicate by.
//!
//! Invariant: a record holds nothing but what its audit entry holds — and
//! an audit entry has no field that can hold a password, code, token, hash
//! or key — so no output can carry a secret; the id is the entry's
//! sequence number, the same in every output and in the audit export.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::AuditRow;

/// Longest text of one field in a record; longer text is cut and ends with
/// [`CUT_MARK`].
pub const MAX_FIELD_CHARS: usize = 1_000;
/// Most items of a list field (the settings a reload names); a longer list
/// keeps the first 31 and ends with `…(cut)`.
pub const MAX_LIST_ITEMS: usize = 32;
/// What ends a cut text.
pub const CUT_MARK: &str = " …(cut)";

/// How serious an event is, in syslog's words (journald's `PRIORITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Compromise or a loss of the audit trail.
    Critical,
    /// Something occcd should have done failed.
    Error,
    /// Refused, failed or suspicious.
    Warning,
    /// A change made on purpose.
    Notice,
    /// Routine.
    Info,
}

impl Severity {
    /// The syslog severity number (RFC 5424).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Critical => 2,
            Self::Error => 3,
            Self::Warning => 4,
            Self::Notice => 5,
            Self::Info => 6,
        }
    }

    /// The stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
            Self::Info => "info",
        }
    }
}

/// An audit entry as a security event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// The audit entry's sequence number: unique, increasing, the key to
    /// deduplicate by.
    pub id: u64,
    /// When, RFC 3339 in UTC to the millisecond.
    pub time: String,
    /// When, in milliseconds since the epoch.
    pub time_unix_ms: i64,
    /// The host it happened on.
    pub host: String,
    /// Which life of the host's store: `0`, or a new value after each
    /// restore from a backup (ids restart from the backup's) — receivers
    /// deduplicate by `(host, store, id)`.
    pub store: String,
    /// What happened: the audit kind, e.g. `login_failed`.
    pub event: String,
    /// The family: `account`, `integrity`, `skill`, `config`, or the event
    /// itself for the daemon's own (`daemon_started`, `call_refused`, …).
    pub category: String,
    /// How serious.
    pub severity: Severity,
    /// The occcd user who acted, if one was logged in.
    pub actor_user: Option<String>,
    /// The OS user of the socket peer (`None`: the daemon itself).
    pub actor_uid: Option<i64>,
    /// The process of the socket peer.
    pub actor_pid: Option<i64>,
    /// The event's own fields (`subject`, `container`, `detail`, …).
    pub fields: Map<String, Value>,
}

impl EventRecord {
    /// The record of `row`, from the store life `store` of `host`.
    #[must_use]
    pub fn of(row: &AuditRow, host: &str, store: &str) -> Self {
        let mut fields = match serde_json::from_str::<Value>(&row.detail) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        for value in fields.values_mut() {
            bound(value);
        }
        let category = match fields.remove("kind") {
            Some(Value::String(category)) => category,
            _ => row.kind.clone(),
        };
        let time = chrono::DateTime::from_timestamp_millis(row.at_unix_ms).map_or_else(
            || row.at_unix_ms.to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        Self {
            id: u64::try_from(row.sequence).unwrap_or(0),
            time,
            time_unix_ms: row.at_unix_ms,
            host: host.to_owned(),
            store: store.to_owned(),
            severity: severity_of(&row.kind, &fields),
            event: row.kind.clone(),
            category,
            actor_user: row.actor_user.clone(),
            actor_uid: row.actor_uid,
            actor_pid: row.actor_pid,
            fields,
        }
    }

    /// Who acted, for people: the occcd user, else `uid N`, else `occcd`.
    #[must_use]
    pub fn actor(&self) -> String {
        match (&self.actor_user, self.actor_uid) {
            (Some(user), _) => user.clone(),
            (None, Some(uid)) => format!("uid {uid}"),
            (None, None) => "occcd".to_owned(),
        }
    }

    /// A field of the event as text, if it has it.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// One line for people: `login_failed by uid 1000: alice (wrong password)`.
    #[must_use]
    pub fn message(&self) -> String {
        let mut line = format!("{} by {}", self.event, self.actor());
        let about: Vec<String> = [
            "subject",
            "container",
            "name",
            "check",
            "to",
            "summary",
            "detail",
            "reason",
        ]
        .iter()
        .filter_map(|name| self.field(name))
        .collect();
        if !about.is_empty() {
            line.push_str(": ");
            line.push_str(&about.join(" "));
        }
        line
    }

    /// The record as one line of JSON.
    #[must_use]
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"id\":{}}}", self.id))
    }
}

/// Cuts long text and long lists in `value`, so every record stays small
/// whatever its entry holds.
fn bound(value: &mut Value) {
    match value {
        Value::String(text) if text.chars().count() > MAX_FIELD_CHARS => {
            *text = text.chars().take(MAX_FIELD_CHARS).collect::<String>() + CUT_MARK;
        }
        Value::Array(items) => {
            if items.len() > MAX_LIST_ITEMS {
                // The last place says that the list went on.
                items.truncate(MAX_LIST_ITEMS - 1);
                items.push(Value::String(CUT_MARK.trim_start().to_owned()));
            }
            items.iter_mut().for_each(bound);
        }
        Value::Object(map) => map.values_mut().for_each(bound),
        _ => {}
    }
}

/// The severity of an event of `kind` with `fields`.
fn severity_of(kind: &str, fields: &Map<String, Value>) -> Severity {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
    match kind {
        "finding_recorded" => match text("severity") {
            "critical" => Severity::Critical,
            "high" => Severity::Error,
            "medium" => Severity::Warning,
            "low" => Severity::Notice,
            _ => Severity::Info,
        },
        "container_health_changed" => match text("to") {
            "compromised" => Severity::Critical,
            "degraded" | "unknown" => Severity::Warning,
            _ => Severity::Notice,
        },
        "quarantine_started" | "audit_gap" | "store_restored" | "store_writes_refused" => {
            Severity::Critical
        }
        "master_key_rotated" | "store_backed_up" => Severity::Warning,
        "snapshot_failed" | "skill_install_failed" | "config_write_failed" | "events_skipped" => {
            Severity::Error
        }
        "login_failed"
        | "login_throttled"
        | "account_locked"
        | "elevation_failed"
        | "permission_denied"
        | "call_refused"
        | "recovery_code_used"
        | "environment_refused"
        | "config_found_outside" => Severity::Warning,
        "bootstrap_started"
        | "account_unlocked"
        | "sessions_revoked"
        | "password_changed"
        | "totp_reenrolled"
        | "totp_reset"
        | "recovery_codes_regenerated"
        | "user_created"
        | "role_changed"
        | "user_disabled"
        | "user_enabled"
        | "user_deleted"
        | "device_key_registered"
        | "device_key_revoked"
        | "os_account_linked"
        | "baseline_pinned"
        | "quarantine_released"
        | "findings_acknowledged"
        | "environment_changed"
        | "skill_approved"
        | "skill_rejected"
        | "skill_revoked"
        | "skill_installed"
        | "skill_uninstalled"
        | "config_edited"
        | "config_restored"
        | "config_reloaded"
        | "daemon_stopped" => Severity::Notice,
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AccountAction, AuditEvent};

    fn row(sequence: i64, event: &AuditEvent, user: Option<&str>) -> AuditRow {
        AuditRow {
            sequence,
            at_unix_ms: 1_796_300_000_123,
            kind: event.kind().to_owned(),
            actor_uid: Some(1000),
            actor_gid: Some(1000),
            actor_pid: Some(42),
            actor_user: user.map(str::to_owned),
            detail: event.detail_json(),
            prev_hash: vec![0; 32],
            entry_hash: vec![1; 32],
        }
    }

    #[test]
    fn a_record_has_stable_names_and_the_entry_sequence_as_id() {
        let failed = AuditEvent::Account {
            action: AccountAction::LoginFailed,
            subject: Some("alice".into()),
            detail: Some("wrong password".into()),
        };
        let record = EventRecord::of(&row(41, &failed, None), "host-a", "0");
        assert_eq!(record.id, 41);
        assert_eq!(record.time, "2026-12-03T12:13:20.123Z");
        assert_eq!(record.event, "login_failed");
        assert_eq!(record.category, "account");
        assert_eq!(record.severity, Severity::Warning);
        assert_eq!(
            record.message(),
            "login_failed by uid 1000: alice wrong password"
        );
        let json: Value = serde_json::from_str(&record.json()).unwrap();
        assert_eq!(json["fields"]["subject"], "alice");
        assert_eq!(json["actor_uid"], 1000);
        assert_eq!(json["severity"], "warning");
        assert!(json["fields"].get("kind").is_none());
    }

    #[test]
    fn severities_follow_what_happened() {
        let finding = |severity| AuditEvent::finding_recorded("c", "event.exec", severity, "sh");
        let of = |event: &AuditEvent| EventRecord::of(&row(1, event, None), "h", "0").severity;
        assert_eq!(of(&finding("critical")), Severity::Critical);
        assert_eq!(of(&finding("medium")), Severity::Warning);
        let health = |to: &str| AuditEvent::ContainerHealthChanged {
            container: "c".into(),
            from: "healthy".into(),
            to: to.into(),
            reason: "why".into(),
        };
        assert_eq!(of(&health("compromised")), Severity::Critical);
        assert_eq!(of(&health("healthy")), Severity::Notice);
        let started = AuditEvent::DaemonStarted {
            version: "0.1.0".into(),
            key_source: "file".into(),
        };
        let record = EventRecord::of(&row(2, &started, None), "h", "0");
        assert_eq!(
            (record.severity, record.category.as_str()),
            (Severity::Info, "daemon_started")
        );
        assert_eq!(Severity::Critical.code(), 2);
    }

    #[test]
    fn a_record_stays_small_whatever_its_entry_holds() {
        let huge = AuditEvent::ConfigReloaded {
            applied: vec!["x".repeat(10_000); 1_000],
            refused: Vec::new(),
            error: Some("e".repeat(1_000_000)),
        };
        let record = EventRecord::of(&row(3, &huge, None), "h", "0");
        assert!(record.json().len() < 64_000, "{}", record.json().len());
        assert!(record.field("error").unwrap().ends_with(CUT_MARK));
        let value: Value = serde_json::from_str(&record.json()).unwrap();
        let applied = value["fields"]["applied"].as_array().unwrap();
        assert_eq!(applied.len(), MAX_LIST_ITEMS);
        assert!(applied[0].as_str().unwrap().ends_with(CUT_MARK));
        assert_eq!(
            applied[MAX_LIST_ITEMS - 1],
            CUT_MARK.trim_start(),
            "a cut list says so"
        );
    }
}
