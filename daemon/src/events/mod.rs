//! Security events out: committed audit entries (logins, refusals, account
//! changes, findings, health changes, quarantines, skills, config) sent as
//! records with stable names (docs/events.md) to journald, a syslog
//! collector and an HTTP webhook — each output on its own.
//!
//! Invariant: the audit log is the outputs' queue. An output reads entries
//! after they committed and keeps a cursor of what its receiver
//! acknowledged, so a receiver that is down, slow or hung loses nothing
//! (delivery resumes from the cursor, across restarts too), blocks no login
//! and no audit write, and costs no disk beyond one row per output. Delivery
//! is at least once: a record whose acknowledgement was lost is sent again
//! with the same `id`, which receivers deduplicate by.

pub mod config;
mod dispatch;
#[cfg(unix)]
mod journald;
mod output;
pub mod record;
mod syslog;
mod tls;
mod webhook;

use std::{path::Path, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

pub use config::EventsConfig;
pub use dispatch::retry_wait;
pub use output::Output;
pub use record::{EventRecord, Severity};
pub use webhook::{SIGNATURE_HEADER, SigningKey};

use crate::{audit::AuditLog, clock::Clock, store::Store};

/// The running outputs.
#[derive(Debug)]
pub struct Outputs {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Outputs {
    /// Starts the outputs `config` turns on (`None`: none), or says why one
    /// cannot start.
    pub fn start(
        config: &EventsConfig,
        store: &Store,
        audit: &AuditLog,
        clock: &Arc<dyn Clock>,
        metrics: &Arc<crate::metrics::Metrics>,
    ) -> Result<Option<Self>, String> {
        config.check()?;
        let outputs = build(config)?;
        if outputs.is_empty() {
            return Ok(None);
        }
        let host = match config.host.as_str() {
            "" => machine_name(),
            name => name.to_owned(),
        };
        let (stop, stopping) = watch::channel(false);
        let head_at_start = *audit.committed_head().borrow();
        let tasks = outputs
            .into_iter()
            .map(|output| {
                let dispatch = dispatch::Dispatch {
                    output,
                    store: store.clone(),
                    audit: audit.clone(),
                    head: audit.committed_head(),
                    head_at_start,
                    host: host.clone(),
                    batch: config.batch,
                    max_backlog: config.max_backlog,
                    retry_max: Duration::from_secs(config.retry_max_secs),
                    clock: Arc::clone(clock),
                    stop: stopping.clone(),
                    metrics: Arc::clone(metrics),
                };
                tokio::spawn(dispatch.run())
            })
            .collect();
        Ok(Some(Self { tasks, stop }))
    }

    /// Lets each output deliver what is committed, for `grace` at most
    /// (what is left goes out after the next start), then ends them.
    pub async fn finish(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.tasks);
        let all = async {
            for task in &mut tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "event outputs still delivering at shutdown: the rest goes out after the next start"
            );
            for task in &tasks {
                task.abort();
            }
            // Ended before the store closes: none still reads it.
            for task in tasks {
                let _ = task.await;
            }
        }
    }
}

/// The outputs `config` turns on.
fn build(config: &EventsConfig) -> Result<Vec<Output>, String> {
    let mut outputs = Vec::new();
    let facility = config::facility_code(&config.syslog.facility).unwrap_or(10);
    let timeout = Duration::from_secs(config.timeout_secs);
    if config.journald.enabled {
        #[cfg(unix)]
        outputs.push(Output::Journald(journald::JournaldOutput::new(
            config.journald.socket.clone(),
            facility,
            timeout,
        )));
        #[cfg(not(unix))]
        return Err("events.journald: there is no journal on this system".to_owned());
    }
    let ca = |file: &Option<std::path::PathBuf>| -> std::path::PathBuf {
        file.clone()
            .unwrap_or_else(|| Path::new(config::SYSTEM_CA_BUNDLE).to_path_buf())
    };
    if !config.syslog.address.is_empty() {
        let address = config::HostPort::parse(&config.syslog.address)?;
        let tls = if config.syslog.tls {
            let name = match config.syslog.server_name.as_str() {
                "" => address.host.as_str(),
                name => name,
            };
            Some(
                tls::TlsTarget::new(&ca(&config.syslog.ca_file), name)
                    .map_err(|err| format!("events.syslog: {err}"))?,
            )
        } else {
            None
        };
        let output = syslog::SyslogOutput::new(address, tls, facility, timeout);
        outputs.push(Output::Syslog(output));
    }
    if !config.webhook.url.is_empty() {
        let target = config::webhook_target(&config.webhook.url)?;
        let secret_file = config
            .webhook
            .secret_file
            .as_deref()
            .ok_or("events.webhook.secret_file is required")?;
        let key = SigningKey::read(secret_file)
            .map_err(|err| format!("events.webhook.secret_file: {err}"))?;
        let tls = match target.tls {
            true => Some(
                tls::TlsTarget::new(&ca(&config.webhook.ca_file), &target.address.host)
                    .map_err(|err| format!("events.webhook: {err}"))?,
            ),
            false => None,
        };
        let output = webhook::WebhookOutput::new(target, tls, key, timeout);
        outputs.push(Output::Webhook(Box::new(output)));
    }
    Ok(outputs)
}

/// The machine's name, as records give it by default.
fn machine_name() -> String {
    #[cfg(unix)]
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok());
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
