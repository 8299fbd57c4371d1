//! Records to the systemd journal over its native protocol, each with its
//! own fields (`OCCC_EVENT=login_failed`, …) so `journalctl OCCC_EVENT=…`
//! finds them.
//!
//! Invariant: every field is encoded so no value can end it or start
//! another (values with a newline use the protocol's length-prefixed form),
//! and field names are fixed here, never taken from a record.

use super::record::EventRecord;

/// The journal fields of `record`, in the native protocol's encoding.
#[must_use]
pub fn encode(record: &EventRecord, facility: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut field = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    };
    field("MESSAGE", &record.message());
    field("PRIORITY", &record.severity.code().to_string());
    field("SYSLOG_FACILITY", &facility.to_string());
    field("SYSLOG_IDENTIFIER", "occcd");
    field("OCCC_ID", &record.id.to_string());
    field("OCCC_STORE", &record.store);
    field("OCCC_EVENT", &record.event);
    field("OCCC_CATEGORY", &record.category);
    field("OCCC_SEVERITY", record.severity.as_str());
    field("OCCC_ACTOR", &record.actor());
    if let Some(uid) = record.actor_uid {
        field("OCCC_ACTOR_UID", &uid.to_string());
    }
    if let Some(pid) = record.actor_pid {
        field("OCCC_ACTOR_PID", &pid.to_string());
    }
    for (name, journal_name) in [("subject", "OCCC_SUBJECT"), ("container", "OCCC_CONTAINER")] {
        if let Some(value) = record.field(name) {
            field(journal_name, &value);
        }
    }
    field("OCCC_TIME", &record.time);
    field("OCCC_RECORD", &record.json());
    out
}

/// Sends records to journald's socket, one datagram each.
#[cfg(unix)]
#[derive(Debug)]
pub struct JournaldOutput {
    socket: std::path::PathBuf,
    facility: u8,
    timeout: std::time::Duration,
}

#[cfg(unix)]
impl JournaldOutput {
    /// To the socket at `socket`.
    #[must_use]
    pub fn new(socket: std::path::PathBuf, facility: u8, timeout: std::time::Duration) -> Self {
        Self {
            socket,
            facility,
            timeout,
        }
    }

    /// Sends `batch` in order; returns how many went out and, if one did
    /// not, why.
    /// Its socket's path.
    #[must_use]
    pub fn destination(&self) -> String {
        self.socket.display().to_string()
    }

    /// A full journal queue counts as a failure after the timeout.
    pub async fn deliver(&self, batch: &[EventRecord]) -> (usize, Option<String>) {
        let socket = match tokio::net::UnixDatagram::unbound() {
            Ok(socket) => socket,
            Err(err) => return (0, Some(format!("no datagram socket: {err}"))),
        };
        // Connected: a full queue wakes the sender when it drains.
        if let Err(err) = socket.connect(&self.socket) {
            return (0, Some(format!("{}: {err}", self.socket.display())));
        }
        for (sent, record) in batch.iter().enumerate() {
            let datagram = encode(record, self.facility);
            match tokio::time::timeout(self.timeout, socket.send(&datagram)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return (sent, Some(format!("{}: {err}", self.socket.display()))),
                Err(_) => {
                    let waited = self.timeout.as_secs();
                    return (
                        sent,
                        Some(format!("the journal took nothing for {waited} s")),
                    );
                }
            }
        }
        (batch.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::Severity;

    #[test]
    fn fields_are_named_and_a_newline_cannot_forge_one() {
        let mut fields = serde_json::Map::new();
        fields.insert("subject".into(), "alice".into());
        fields.insert("detail".into(), "line one\nOCCC_EVENT=forged".into());
        let record = EventRecord {
            id: 7,
            time: "2026-12-03T00:00:00.000Z".into(),
            time_unix_ms: 0,
            host: "h".into(),
            store: "0".into(),
            event: "login_failed".into(),
            category: "account".into(),
            severity: Severity::Warning,
            actor_user: None,
            actor_uid: Some(1000),
            actor_pid: None,
            fields,
        };
        let fields = parse(&encode(&record, 10));
        let values = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(field, _)| field == name)
                .map(|(_, value)| value.as_str())
                .collect()
        };
        assert_eq!(values("PRIORITY"), ["4"]);
        assert_eq!(
            values("OCCC_EVENT"),
            ["login_failed"],
            "not forged by a value"
        );
        assert_eq!(values("OCCC_SUBJECT"), ["alice"]);
        assert_eq!(values("OCCC_ACTOR"), ["uid 1000"]);
        assert_eq!(values("MESSAGE"), [record.message().as_str()]);
        assert!(values("MESSAGE")[0].contains('\n'));
    }

    /// The journal's reading of a datagram (`NAME=value\n`, or `NAME\n`,
    /// a little-endian u64 length, the value and `\n`).
    fn parse(mut bytes: &[u8]) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        while !bytes.is_empty() {
            let end = bytes
                .iter()
                .position(|b| *b == b'=' || *b == b'\n')
                .unwrap();
            let name = String::from_utf8(bytes[..end].to_vec()).unwrap();
            let value;
            if bytes[end] == b'=' {
                let line = bytes[end..].iter().position(|b| *b == b'\n').unwrap() + end;
                value = bytes[end + 1..line].to_vec();
                bytes = &bytes[line + 1..];
            } else {
                let length =
                    u64::from_le_bytes(bytes[end + 1..end + 9].try_into().unwrap()) as usize;
                value = bytes[end + 9..end + 9 + length].to_vec();
                assert_eq!(bytes[end + 9 + length], b'\n');
                bytes = &bytes[end + 10 + length..];
            }
            fields.push((name, String::from_utf8(value).unwrap()));
        }
        fields
    }
}
