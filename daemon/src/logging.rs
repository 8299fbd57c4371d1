//! Log output through `tracing-subscriber`, as text or JSON, on stderr (where
//! journald and launchd collect it).
//!
//! Invariant: nothing here decides *what* occcd logs; secrets stay out of
//! logs because their types redact themselves and handlers never log them.
//! Dependencies that log payloads at debug level (bollard prints whole
//! engine responses — container environments hold API keys) are capped at
//! info whatever the filter asks.

use std::io::IsTerminal;

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
const PAYLOAD_LOGGERS: &[&str] = &["bollard", "hyper", "hyper_util", "h2", "tower"];

/// `requested` with every payload logger capped at info (later directives
/// for the same target win).
fn capped(requested: &str) -> String {
    let mut directive = requested.to_owned();
    for target in PAYLOAD_LOGGERS {
        directive.push_str(&format!(",{target}=info"));
    }
    directive.trim_start_matches(',').to_owned()
}

/// Installs the global subscriber.
pub fn init_logging(config: &LogConfig) -> Result<(), LoggingError> {
    let directive = capped(&std::env::var(LOG_ENV).unwrap_or_else(|_| config.filter.clone()));
    let filter =
        tracing_subscriber::EnvFilter::try_new(&directive).map_err(|err| LoggingError::Filter {
            directive: directive.clone(),
            message: err.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_loggers_stay_at_info_even_at_trace() {
        let directive = capped("trace");
        assert!(directive.starts_with("trace,"));
        assert!(directive.contains("bollard=info"));
        tracing_subscriber::EnvFilter::try_new(&directive).unwrap();
        assert_eq!(
            capped(""),
            "bollard=info,hyper=info,hyper_util=info,h2=info,tower=info"
        );
    }
}
