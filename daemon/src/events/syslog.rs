//! Records to a syslog collector: RFC 5424 messages over TCP, framed by
//! octet counting (RFC 6587), optionally in TLS (RFC 5425).
//!
//! Invariant: a batch counts as delivered only once the collector has read
//! all of it — occcd half-closes the connection after the last message
//! and waits for the collector to close its side (which it does after
//! reading everything); anything else is a failed delivery, sent again.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{config::HostPort, record::EventRecord, tls::TlsTarget};

/// The structured-data id: `occc` under the enterprise number RFC 5612
/// reserves for documentation (occcd has none of its own yet).
const SD_ID: &str = "occc@32473";

/// `record` as an RFC 5424 message with `facility` (without framing).
#[must_use]
pub fn format(record: &EventRecord, facility: u8) -> String {
    let priority = u16::from(facility) * 8 + u16::from(record.severity.code());
    let host = header_field(&record.host, 255);
    let msgid = header_field(&record.event, 32);
    let mut data = format!(
        "[{SD_ID} id=\"{}\" store=\"{}\"",
        record.id,
        sd_escape(&record.store)
    );
    let mut param = |name: &str, value: &str| {
        data.push_str(&format!(" {name}=\"{}\"", sd_escape(value)));
    };
    param("severity", record.severity.as_str());
    param("category", &record.category);
    param("actor", &record.actor());
    if let Some(uid) = record.actor_uid {
        param("actor_uid", &uid.to_string());
    }
    for name in ["subject", "container"] {
        if let Some(value) = record.field(name) {
            param(name, &value);
        }
    }
    data.push(']');
    // MSG: the whole record as JSON, marked UTF-8 by its BOM (RFC 5424 6.4).
    format!(
        "<{priority}>1 {} {host} occcd {} {msgid} {data} \u{feff}{}",
        record.time,
        std::process::id(),
        record.json()
    )
}

/// `text` as a header field: printable ASCII without spaces, at most `max`
/// characters, `-` when empty (RFC 5424 6.2).
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// `value` as a structured-data parameter value: `"`, `\` and `]` escaped
/// (RFC 5424 6.3.3), control characters dropped.
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sends batches to one collector.
#[derive(Debug)]
pub struct SyslogOutput {
    address: HostPort,
    tls: Option<TlsTarget>,
    facility: u8,
    /// Longest one delivery (connect, send, the collector's close) may take.
    timeout: Duration,
}

impl SyslogOutput {
    /// To `address`, in TLS when `tls` is set.
    #[must_use]
    pub fn new(address: HostPort, tls: Option<TlsTarget>, facility: u8, timeout: Duration) -> Self {
        Self {
            address,
            tls,
            facility,
            timeout,
        }
    }

    /// `host:port`, and whether in TLS.
    #[must_use]
    pub fn destination(&self) -> String {
        let tls = if self.tls.is_some() { " tls" } else { "" };
        format!("{}:{}{tls}", self.address.host, self.address.port)
    }

    /// Sends `batch` on a connection of its own; `Err` says why it may not
    /// have arrived.
    pub async fn deliver(&self, batch: &[EventRecord]) -> Result<(), String> {
        let mut frames = Vec::with_capacity(batch.len() * 600);
        for record in batch {
            let message = format(record, self.facility);
            frames.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
        }
        let attempt = async {
            let tcp =
                tokio::net::TcpStream::connect((self.address.host.as_str(), self.address.port))
                    .await
                    .map_err(|err| format!("connect: {err}"))?;
            match &self.tls {
                None => send_and_await_close(tcp, &frames).await,
                Some(tls) => send_and_await_close(tls.connect(tcp).await?, &frames).await,
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
    }
}

/// Writes `bytes`, half-closes, and waits until the peer closes: then it has
/// read everything.
async fn send_and_await_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    bytes: &[u8],
) -> Result<(), String> {
    stream
        .write_all(bytes)
        .await
        .map_err(|err| format!("send: {err}"))?;
    stream
        .shutdown()
        .await
        .map_err(|err| format!("close: {err}"))?;
    let mut ignored = [0_u8; 512];
    loop {
        match stream.read(&mut ignored).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A TLS peer that closes without close_notify still closed.
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(format!("before the collector closed: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::Severity;

    #[test]
    fn a_message_follows_rfc_5424_and_values_cannot_break_out() {
        let mut fields = serde_json::Map::new();
        fields.insert("subject".into(), "al\"ice] x=\"y".into());
        let record = EventRecord {
            id: 9,
            time: "2026-12-03T00:00:00.000Z".into(),
            time_unix_ms: 0,
            host: "web 1".into(),
            store: "0".into(),
            event: "login_failed".into(),
            category: "account".into(),
            severity: Severity::Warning,
            actor_user: None,
            actor_uid: Some(1000),
            actor_pid: Some(5),
            fields,
        };
        let message = format(&record, 10);
        let head = format!(
            "<84>1 2026-12-03T00:00:00.000Z web1 occcd {} login_failed ",
            std::process::id()
        );
        assert!(message.starts_with(&head), "{message}");
        assert!(message.contains(r#"[occc@32473 id="9" store="0" severity="warning" category="account" actor="uid 1000" actor_uid="1000" subject="al\"ice\] x=\"y"] "#), "{message}");
        let json = message.split('\u{feff}').nth(1).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(json).unwrap()["id"],
            9
        );
        assert_eq!(header_field("", 5), "-");
    }
}
