//! Where the metrics listener listens, if anywhere, and what a scraper
//! must present.
//!
//! Invariant: a [`MetricsConfig`] that passed [`MetricsConfig::address`]
//! names no address or a loopback one — metrics are never served to the
//! network by occcd itself.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `127.0.0.1:9464` or `[::1]:9464` to serve `GET /metrics` there;
    /// empty (the default): no listener. A port below 1024 cannot be taken
    /// by an unprivileged user first.
    pub listen: String,
    /// A file whose content (trimmed) a scraper must send as
    /// `Authorization: Bearer …` (Prometheus's `credentials_file`); unset:
    /// any loopback client may read the metrics.
    pub token_file: Option<PathBuf>,
}

impl MetricsConfig {
    /// The loopback address to listen on (`None`: metrics are off), or why
    /// `listen` is refused.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let address: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "{:?} is not an address and port, e.g. 127.0.0.1:9464",
                self.listen
            )
        })?;
        if !address.ip().is_loopback() {
            return Err(format!(
                "{address} is not a loopback address; occcd serves metrics on 127.0.0.1 or ::1 only \
                 (put a proxy in front to reach it from elsewhere)"
            ));
        }
        Ok(Some(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        let config = |listen: &str| MetricsConfig {
            listen: listen.to_owned(),
            token_file: None,
        };
        assert_eq!(config("").address(), Ok(None));
        assert!(config("127.0.0.1:9464").address().unwrap().is_some());
        assert!(config("[::1]:9464").address().unwrap().is_some());
        assert!(config("127.0.0.2:9464").address().unwrap().is_some());
        for refused in [
            "0.0.0.0:9464",
            "192.168.1.10:9464",
            "[::]:9464",
            "[::ffff:127.0.0.1]:9464",
            "localhost:9464",
            "9464",
        ] {
            assert!(config(refused).address().is_err(), "{refused}");
        }
    }
}
