//! Log output through `tracing-subscriber`, as text or JSON, on stderr (where
//! journald and launchd collect it).
//!
//! Invariant: nothing here decides *what* occcd logs; secrets stay out of
//! logs because their types redact themselves and handlers never log them.
//! Dependencies that log payloads at debug level (bollard prints whole
//! engine responses — container environments hold API keys; sqlx prints
//! statements, the first being `PRAGMA key`) are capped at info whatever
//! the filter asks — after a reload too (and the store turns sqlx's
//! statement logging off altogether).

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{LevelFilter, Targets},
    layer::SubscriberExt,
    reload,
    util::SubscriberInitExt,
};

use crate::config::{LogConfig, LogFormat};

/// Environment variable whose filter, when set, wins over the config's.
pub const LOG_ENV: &str = "OCCCD_LOG";

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter directive does not parse.
    #[error("invalid log filter {directive:?}: {message}")]
    Filter {
        /// The directive.
        directive: String,
        /// What the parser said.
        message: String,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadySet,
}

/// Targets capped at info: they log request and response bodies below it.
const PAYLOAD_LOGGERS: &[&str] = &["bollard", "hyper", "hyper_util", "h2", "tower", "sqlx"];

/// Every payload logger (and its modules) at info at most, whatever the
/// reloadable filter says: a filter of its own on the output, since an
/// `EnvFilter` lets a more specific directive (`bollard::docker=debug`)
/// win over the cap.
fn payload_cap() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(PAYLOAD_LOGGERS.iter().map(|target| (*target, Level::INFO)))
}

/// `requested` with every payload logger capped at info (later directives
/// for the same target win; [`payload_cap`] holds whatever they say).
fn capped(requested: &str) -> String {
    let mut directive = requested.to_owned();
    for target in PAYLOAD_LOGGERS {
        directive.push_str(&format!(",{target}=info"));
    }
    directive.trim_start_matches(',').to_owned()
}

/// The filter of the installed subscriber, replaceable while it runs.
#[derive(Debug, Clone)]
pub struct LogFilter(reload::Handle<EnvFilter, Registry>);

impl LogFilter {
    /// Replaces the filter with `config`'s (payload loggers still capped);
    /// `OCCCD_LOG`, when set, keeps winning. Returns the directive in force.
    pub fn reload(&self, config: &LogConfig) -> Result<String, LoggingError> {
        let (directive, filter) = filter_for(config)?;
        self.0.reload(filter).map_err(|err| LoggingError::Filter {
            directive: directive.clone(),
            message: err.to_string(),
        })?;
        Ok(directive)
    }
}

/// Whether `config`'s filter parses (a reload checks before applying).
pub fn check_filter(config: &LogConfig) -> Result<(), LoggingError> {
    filter_for(config).map(drop)
}

fn filter_for(config: &LogConfig) -> Result<(String, EnvFilter), LoggingError> {
    let directive = capped(&std::env::var(LOG_ENV).unwrap_or_else(|_| config.filter.clone()));
    let filter = EnvFilter::try_new(&directive).map_err(|err| LoggingError::Filter {
        directive: directive.clone(),
        message: err.to_string(),
    })?;
    Ok((directive, filter))
}

/// Installs the global subscriber; its filter can be reloaded.
pub fn init_logging(config: &LogConfig) -> Result<LogFilter, LoggingError> {
    let (_, filter) = filter_for(config)?;
    let (filter, handle) = reload::Layer::new(filter);
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let output = match config.format {
        LogFormat::Text => output.with_filter(payload_cap()).boxed(),
        LogFormat::Json => output.json().with_filter(payload_cap()).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|_| LoggingError::AlreadySet)?;
    Ok(LogFilter(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_more_specific_directive_cannot_lift_the_cap() {
        let cap = payload_cap();
        assert!(!cap.would_enable("bollard::docker", &Level::DEBUG));
        assert!(!cap.would_enable("sqlx::query", &Level::DEBUG));
        assert!(cap.would_enable("bollard::docker", &Level::INFO));
        assert!(cap.would_enable("occcd::auth", &Level::TRACE));
    }

    #[test]
    fn payload_loggers_stay_at_info_even_at_trace() {
        let directive = capped("trace");
        assert!(directive.starts_with("trace,"));
        assert!(directive.contains("bollard=info"));
        tracing_subscriber::EnvFilter::try_new(&directive).unwrap();
        assert_eq!(
            capped(""),
            "bollard=info,hyper=info,hyper_util=info,h2=info,tower=info,sqlx=info"
        );
    }
}
