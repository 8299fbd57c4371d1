//! Records to an HTTP webhook: a JSON batch POSTed with an HMAC-SHA256
//! signature the receiver checks (docs/events.md shows how).
//!
//! Invariant: a batch counts as delivered only on a 2xx answer; the
//! signature covers the timestamp and the exact body bytes, so a receiver
//! can refuse forged, altered and replayed deliveries; the secret never
//! leaves this module except as that signature.

use std::{path::Path, time::Duration};

use http_body_util::Full;
use hyper::body::Bytes;
use ring::hmac;
use zeroize::Zeroizing;

use super::{config::WebhookTarget, record::EventRecord, tls::TlsTarget};

/// Shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Most of the secret file read, in bytes.
const MAX_SECRET_FILE_BYTES: u64 = 4_096;
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
    /// Reads the secret in `path` (trimmed; at least [`MIN_SECRET_BYTES`]):
    /// on Unix a regular file, not a link, owned by occcd's user or root and
    /// readable by nobody else — checked on the open file, then read from it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let named = |err: std::io::Error| format!("{}: {err}", path.display());
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK,
        );
        let file = options.open(path).map_err(named)?;
        let metadata = file.metadata().map_err(named)?;
        if !metadata.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mode = metadata.mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by others (mode {:o}): whoever reads it can forge deliveries; chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
            let owner = metadata.uid();
            if owner != 0 && owner != nix::unistd::geteuid().as_raw() {
                return Err(format!(
                    "{} belongs to uid {owner}: it must be root's or occcd's",
                    path.display()
                ));
            }
        }
        let mut text = Zeroizing::new(Vec::new());
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_SECRET_FILE_BYTES),
            &mut text,
        )
        .map_err(named)?;
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
    /// Longest one delivery (connect, send, the answer's head) may take.
    timeout: Duration,
}

impl WebhookOutput {
    /// To `target` (in TLS when `tls` is set), signing with `key`.
    #[must_use]
    pub fn new(
        target: WebhookTarget,
        tls: Option<TlsTarget>,
        key: SigningKey,
        timeout: Duration,
    ) -> Self {
        Self {
            target,
            tls,
            key,
            timeout,
        }
    }

    /// The URL (it holds no credentials: they are refused).
    #[must_use]
    pub fn destination(&self) -> String {
        let scheme = if self.target.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.target.authority, self.target.path)
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
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
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
    // The connection runs on its own: a receiver that answers and closes at
    // once (`Connection: close`, HTTP/1.0) ends it in the same step that
    // hands over the answer, and the answer is what counts.
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    driver.abort();
    let status = response.map_err(|err| format!("HTTP: {err}"))?.status();
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
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            assert!(SigningKey::read(&link).is_err(), "a link is not followed");
            let fifo = dir.path().join("fifo");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            assert!(
                SigningKey::read(&fifo)
                    .unwrap_err()
                    .contains("not a regular file")
            );
        }
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
