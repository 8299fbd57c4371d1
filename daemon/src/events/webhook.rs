//! Records to an HTTP webhook: a JSON batch POSTed with an HMAC-SHA256
//! signature the receiver checks (docs/events.md shows how).
//!
//! Invariant: a batch counts as delivered only on a 2xx answer; the
//! signature covers the timestamp and the exact body bytes, so a receiver
//! can refuse forged, altered and replayed deliveries; the secret never
//! leaves this module except as that signature.

use std::path::Path;

use http_body_util::Full;
use hyper::body::Bytes;
use ring::hmac;
use zeroize::Zeroizing;

use super::{
    config::WebhookTarget, record::EventRecord, syslog::DELIVERY_PATIENCE, tls::TlsTarget,
};

/// Shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The header holding `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
pub const SIGNATURE_HEADER: &str = "x-occcd-signature";

/// The key receivers share with occcd.
pub struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Reads the secret in `path` (trimmed; at least [`MIN_SECRET_BYTES`]).
    pub fn read(path: &Path) -> Result<Self, String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mode = std::fs::metadata(path)
                .map_err(|err| format!("{}: {err}", path.display()))?
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by others (mode {:o}): whoever reads it can forge deliveries; chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        let text = Zeroizing::new(
            std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?,
        );
        let secret = text.trim_ascii();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "{} holds {} bytes; a signing secret needs at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
                path.display(),
                secret.len()
            ));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// The signature header's value for `body` sent at `unix_secs`.
    #[must_use]
    pub fn sign(&self, unix_secs: i64, body: &[u8]) -> String {
        let mut message = format!("{unix_secs}.").into_bytes();
        message.extend_from_slice(body);
        let tag = hmac::sign(&self.0, &message);
        format!("t={unix_secs},v1={}", hex::encode(tag.as_ref()))
    }
}

/// Posts batches to one URL.
#[derive(Debug)]
pub struct WebhookOutput {
    target: WebhookTarget,
    tls: Option<TlsTarget>,
    key: SigningKey,
}

impl WebhookOutput {
    /// To `target` (in TLS when `tls` is set), signing with `key`.
    #[must_use]
    pub fn new(target: WebhookTarget, tls: Option<TlsTarget>, key: SigningKey) -> Self {
        Self { target, tls, key }
    }

    /// The body of `batch`: `{"records":[…]}`.
    #[must_use]
    pub fn body(batch: &[EventRecord]) -> Vec<u8> {
        let records: Vec<String> = batch.iter().map(EventRecord::json).collect();
        format!("{{\"records\":[{}]}}", records.join(",")).into_bytes()
    }

    /// POSTs `batch` signed at `unix_secs`; `Err` says why it was not taken.
    pub async fn deliver(&self, batch: &[EventRecord], unix_secs: i64) -> Result<(), String> {
        let body = Self::body(batch);
        let request = http::Request::post(self.target.path.as_str())
            .header(http::header::HOST, self.target.authority.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("occcd/", env!("CARGO_PKG_VERSION")),
            )
            .header(SIGNATURE_HEADER, self.key.sign(unix_secs, &body))
            .header(
                "x-occcd-records",
                match (batch.first(), batch.last()) {
                    (Some(first), Some(last)) => format!("{}-{}", first.id, last.id),
                    _ => String::new(),
                },
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| format!("request: {err}"))?;
        let address = &self.target.address;
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((address.host.as_str(), address.port))
                .await
                .map_err(|err| format!("connect: {err}"))?;
            match &self.tls {
                None => post(tcp, request).await,
                Some(tls) => post(tls.connect(tcp).await?, request).await,
            }
        };
        tokio::time::timeout(DELIVERY_PATIENCE, attempt)
            .await
            .map_err(|_| format!("no answer within {} s", DELIVERY_PATIENCE.as_secs()))?
    }
}

/// Sends `request` over `stream` (HTTP/1.1) and judges the status.
async fn post<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|err| format!("HTTP: {err}"))?;
    let connection = std::pin::pin!(connection);
    let response = tokio::select! {
        response = sender.send_request(request) => response.map_err(|err| format!("HTTP: {err}"))?,
        ended = connection => return Err(match ended {
            Ok(()) => "the receiver closed the connection".to_owned(),
            Err(err) => format!("HTTP: {err}"),
        }),
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_time_and_body_and_short_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                SigningKey::read(&path)
                    .unwrap_err()
                    .contains("readable by others")
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(SigningKey::read(&path).unwrap_err().contains("at least 32"));
        std::fs::write(&path, format!("{}\n", "k".repeat(32))).unwrap();
        let key = SigningKey::read(&path).unwrap();
        let header = key.sign(1_800_000_000, b"{\"records\":[]}");
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, "k".repeat(32).as_bytes()),
            b"1800000000.{\"records\":[]}",
        );
        assert_eq!(
            header,
            format!("t=1800000000,v1={}", hex::encode(expected.as_ref()))
        );
        assert_ne!(header, key.sign(1_800_000_001, b"{\"records\":[]}"));
        assert_eq!(format!("{key:?}"), "SigningKey(..)");
    }
}
