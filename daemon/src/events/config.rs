//! `[events]`: which outputs receive occcd's security events, and where.
//!
//! Invariant: a config that passed [`EventsConfig::check`] names only
//! targets occcd can reach without guessing — a syslog `host:port`, an
//! `http`/`https` URL with a host and no credentials in it — and a webhook
//! always has a signing secret file; nothing here is a secret itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[events]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The name records give as their host (empty: the machine's name).
    pub host: String,
    /// Most records sent in one delivery.
    pub batch: u32,
    /// An output further behind than this many entries skips ahead to it
    /// and records an `events_skipped` entry (which it then delivers).
    pub max_backlog: u64,
    /// Longest wait between retries, in seconds (waits double from 1 s).
    pub retry_max_secs: u64,
    /// Longest one delivery may take (connect, send, answer), in seconds.
    pub timeout_secs: u64,
    /// `[events.journald]`.
    pub journald: JournaldConfig,
    /// `[events.syslog]`.
    pub syslog: SyslogConfig,
    /// `[events.webhook]`.
    pub webhook: WebhookConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            batch: 200,
            max_backlog: 100_000,
            retry_max_secs: 60,
            timeout_secs: 10,
            journald: JournaldConfig::default(),
            syslog: SyslogConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// `[events.journald]`: native journal fields (`OCCC_EVENT=`, …).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournaldConfig {
    /// Send records to the journal.
    pub enabled: bool,
    /// journald's native socket.
    pub socket: PathBuf,
}

impl Default for JournaldConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            socket: PathBuf::from("/run/systemd/journal/socket"),
        }
    }
}

/// `[events.syslog]`: RFC 5424 over TCP (RFC 6587 octet counting).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the collector (empty: off).
    pub address: String,
    /// Speak TLS (RFC 5425); the collector's certificate is verified.
    pub tls: bool,
    /// PEM file of the CAs to trust (empty: the system's bundle).
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry (empty: the host of `address`).
    pub server_name: String,
    /// Syslog facility: `auth`, `authpriv`, `daemon`, `security`, `local0` … `local7`.
    pub facility: String,
    /// Send without TLS to a collector that is not on this host (whoever is
    /// on the path can read the events and acknowledge them in its place).
    pub allow_plaintext: bool,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            tls: false,
            ca_file: None,
            server_name: String::new(),
            facility: "authpriv".to_owned(),
            allow_plaintext: false,
        }
    }
}

/// `[events.webhook]`: JSON batches POSTed with an HMAC-SHA256 signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://…` or `https://…` (empty: off).
    pub url: String,
    /// File holding the signing secret (at least 32 bytes, trimmed).
    pub secret_file: Option<PathBuf>,
    /// PEM file of the CAs to trust for `https` (empty: the system's bundle).
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a receiver that is not on this host.
    pub allow_plaintext: bool,
}

/// Where the system's CA bundle is on Debian.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A syslog target: host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Name or address (brackets of an IPv6 address removed).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || format!("{text:?} is not host:port, e.g. collector.example:6514");
        let (host, port) = text.rsplit_once(':').ok_or_else(refuse)?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| refuse())?;
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
        if host.is_empty() || port == 0 || !host.chars().all(plain) {
            return Err(refuse());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl HostPort {
    /// Whether it names this host (`localhost` or a loopback address).
    #[must_use]
    pub fn is_this_host(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Syslog facility numbers by name (RFC 5424 table 1).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "auth" => 4,
        "daemon" => 3,
        "authpriv" => 10,
        "security" => 13,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

impl EventsConfig {
    /// Why this config cannot be used, if it cannot (the secret file is
    /// read at start, not here).
    pub fn check(&self) -> Result<(), String> {
        if self.batch == 0 || self.batch > 1_000 {
            return Err(format!("events.batch = {}: 1 to 1000", self.batch));
        }
        if self.retry_max_secs == 0 || self.retry_max_secs > 3_600 {
            return Err("events.retry_max_secs: 1 to 3600".to_owned());
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err("events.timeout_secs: 1 to 300".to_owned());
        }
        if self.max_backlog < u64::from(self.batch) {
            return Err("events.max_backlog must be at least events.batch".to_owned());
        }
        if !self.syslog.address.is_empty() {
            let address = HostPort::parse(&self.syslog.address)
                .map_err(|err| format!("events.syslog.address: {err}"))?;
            if !self.syslog.tls && !self.syslog.allow_plaintext && !address.is_this_host() {
                return Err(format!(
                    "events.syslog: {} is not on this host and tls is off: events would cross the \
                     network in the clear, and anyone on the path could acknowledge them and drop \
                     them; set tls = true (or allow_plaintext = true for a network you trust)",
                    address.host
                ));
            }
            if facility_code(&self.syslog.facility).is_none() {
                return Err(format!(
                    "events.syslog.facility {:?}: auth, authpriv, daemon, security or local0 … local7",
                    self.syslog.facility
                ));
            }
        }
        if !self.webhook.url.is_empty() {
            let target = webhook_target(&self.webhook.url)
                .map_err(|err| format!("events.webhook.url: {err}"))?;
            if !target.tls && !self.webhook.allow_plaintext && !target.address.is_this_host() {
                return Err(
                    "events.webhook.url is http:// to another host: answers could be forged on the \
                     path (use https://, or allow_plaintext = true for a network you trust)"
                        .to_owned(),
                );
            }
            if self.webhook.secret_file.is_none() {
                return Err(
                    "events.webhook.secret_file is required: receivers verify the signature with it".to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// A webhook URL taken apart: TLS or not, host, port, path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `https`.
    pub tls: bool,
    /// Host and port.
    pub address: HostPort,
    /// Path and query, from `/`.
    pub path: String,
    /// The `Host` header.
    pub authority: String,
}

/// Parses a webhook URL: `http` or `https`, a host, no user or password.
pub fn webhook_target(url: &str) -> Result<WebhookTarget, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "not a URL, e.g. https://alerts.example/occcd".to_owned())?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http:// and https:// are supported".to_owned()),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "the URL names no host".to_owned())?;
    if authority.as_str().contains('@') {
        return Err(
            "a user or password in the URL would be logged and stored in plain text; \
                    receivers authenticate occcd by the signature"
                .to_owned(),
        );
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let address = HostPort::parse(&format!("{}:{port}", authority.host()))
        .map_err(|_| "the URL's host is not a plain host name or address".to_owned())?;
    Ok(WebhookTarget {
        tls,
        address,
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned()),
        authority: authority.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_parsed_or_refused_with_the_reason() {
        assert_eq!(
            HostPort::parse("collector.example:6514").unwrap(),
            HostPort {
                host: "collector.example".into(),
                port: 6514
            }
        );
        assert_eq!(HostPort::parse("[::1]:514").unwrap().host, "::1");
        for bad in [
            "collector",
            ":514",
            "host:0",
            "host:x",
            "a b:1",
            "host:70000",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad}");
        }
        let target = webhook_target("https://alerts.example/hook?x=1").unwrap();
        assert!(target.tls);
        assert_eq!(target.address.port, 443);
        assert_eq!(target.path, "/hook?x=1");
        assert_eq!(webhook_target("http://127.0.0.1:8080").unwrap().path, "/");
        assert!(
            webhook_target("https://user:pw@alerts.example/")
                .unwrap_err()
                .contains("password")
        );
        assert!(webhook_target("ftp://alerts.example/").is_err());
        assert!(webhook_target("alerts.example").is_err());
    }

    #[test]
    fn a_webhook_needs_a_secret_and_numbers_stay_in_range() {
        let mut config = EventsConfig::default();
        assert!(config.check().is_ok());
        config.webhook.url = "http://alerts.example/".into();
        config.webhook.secret_file = Some("/etc/occcd/webhook.secret".into());
        assert!(
            config
                .check()
                .unwrap_err()
                .contains("http:// to another host")
        );
        config.webhook.secret_file = None;
        config.webhook.url = "http://127.0.0.1:9/".into();
        assert!(config.check().unwrap_err().contains("secret_file"));
        config.webhook.secret_file = Some("/etc/occcd/webhook.secret".into());
        assert!(config.check().is_ok());
        config.syslog.address = "collector:514".into();
        assert!(config.check().unwrap_err().contains("in the clear"));
        config.syslog.tls = true;
        config.syslog.facility = "mail".into();
        assert!(config.check().unwrap_err().contains("facility"));
        config.syslog.facility = "local3".into();
        assert!(config.check().is_ok());
        config.batch = 0;
        assert!(config.check().is_err());
    }
}
