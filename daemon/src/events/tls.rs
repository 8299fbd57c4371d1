//! TLS to an event receiver: the certificate must chain to a configured CA
//! (or the system's bundle) and name the receiver.
//!
//! Invariant: there is no way to turn verification off; a CA file that
//! holds no certificate is refused at start, not at the first delivery.

use std::{path::Path, sync::Arc};

use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream, rustls};

/// A receiver to speak TLS to.
#[derive(Clone)]
pub struct TlsTarget {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsTarget {
    /// Trusting the CAs in `ca_file`, expecting a certificate for `name`.
    pub fn new(ca_file: &Path, name: &str) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .map_err(|err| format!("{}: {err}", ca_file.display()))?
            .filter_map(Result::ok)
            .collect();
        // A bundle may hold a certificate rustls cannot use: skip it, not all.
        roots.add_parsable_certificates(certificates);
        if roots.is_empty() {
            return Err(format!("{} holds no CA certificate", ca_file.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS: {err}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| format!("{name:?} is not a host name or address"))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS session over `tcp`.
    pub async fn connect(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|err| format!("TLS: {err}"))
    }
}
