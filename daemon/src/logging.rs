//! Log output through `tracing-subscriber`, as text or JSON, on stderr (where
//! journald and launchd collect it).
//!
//! Invariant: nothing here decides *what* is logged; secrets stay out of logs
//! because their types redact themselves and handlers never log them.

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

/// Installs the global subscriber.
pub fn init_logging(config: &LogConfig) -> Result<(), LoggingError> {
    let directive = std::env::var(LOG_ENV).unwrap_or_else(|_| config.filter.clone());
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
