//! Command line: `occcd [serve]`, `occcd audit verify`, `occcd config …`, and
//! the flags that override the config file.
//!
//! Invariant: the effective configuration is file (or defaults), then `--dev`
//! paths, then individual flags, then validation — in that order, always.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, LogFormat, SYSTEM_CONFIG_PATH};

/// occcd — OpenClaw Command Center security daemon.
#[derive(Debug, Parser)]
#[command(name = "occcd", version, about, long_about = None)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/occcd/occcd.toml when it exists.
    #[arg(long, global = true, env = "OCCCD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Development mode: socket, database and key under DIR, run as any user.
    #[arg(long, global = true, value_name = "DIR")]
    pub dev: Option<PathBuf>,
    /// Override socket.path.
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Override socket.group.
    #[arg(long, global = true, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Override log.format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Override log.filter (OCCCD_LOG wins over both).
    #[arg(long, global = true, value_name = "DIRECTIVE")]
    pub log_filter: Option<String>,
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write an encrypted, signed backup of the store to FILE (0600, never
    /// over an existing file) while the daemon runs or not.
    Backup {
        /// Where to write it.
        file: PathBuf,
    },
    /// Verify the backup in FILE completely, then put it in place of the
    /// store (the daemon must be stopped; the replaced store is kept).
    Restore {
        /// The backup.
        file: PathBuf,
        /// Restore even when the current store has newer audit entries, or
        /// does not open (they are dropped; the replaced store is kept).
        #[arg(long)]
        accept_loss: bool,
    },
    /// Put the store under a new master key (the daemon must be stopped):
    /// the database re-encrypted, sealed values re-sealed, audited. Rerun
    /// after an interruption: it says which key the store opens with and
    /// finishes.
    Rekey {
        /// With the key in a systemd credential: the new file (0600) that
        /// receives the new key, to be encrypted into the credential.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
    /// Run the daemon (the default).
    Serve,
    /// Work on the audit log directly (the daemon may be running).
    Audit {
        /// What to do with the audit log.
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Print occcd's manual page (roff, section 8) and exit.
    #[command(hide = true)]
    Man,
    /// Show or check configuration.
    Config {
        /// What to show.
        #[command(subcommand)]
        action: ConfigCommand,
    },
}

/// `occcd audit …`
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and check every signed checkpoint; exit 0 when
    /// intact, 1 naming the first broken entry.
    Verify,
    /// Print the Ed25519 public key exports are verified with (hex), to pin
    /// it out of band (`occcctl audit verify-export --pubkey`).
    Pubkey,
}

/// `occcd config …`
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Show,
}

impl Cli {
    /// The effective, validated configuration.
    pub fn effective_config(&self) -> Result<Config, ConfigError> {
        let file = self.config.clone().or_else(|| {
            let system = PathBuf::from(SYSTEM_CONFIG_PATH);
            (self.dev.is_none() && system.exists()).then_some(system)
        });
        let mut config = match file {
            Some(path) => Config::from_file(&path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.dev {
            let dir = std::path::absolute(dir).map_err(|err| ConfigError::Invalid {
                key: "--dev",
                reason: err.to_string(),
            })?;
            config.use_dev_dir(&dir);
        }
        if let Some(path) = &self.socket {
            config.socket.path.clone_from(path);
        }
        if let Some(group) = &self.socket_group {
            config.socket.group = Some(group.clone());
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(filter) = &self.log_filter {
            config.log.filter.clone_from(filter);
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_dev_paths() {
        let cli = Cli::parse_from([
            "occcd",
            "--dev",
            "/tmp/d",
            "--socket",
            "/tmp/other.sock",
            "--log-format",
            "json",
        ]);
        let config = cli.effective_config().unwrap();
        assert_eq!(config.socket.path, PathBuf::from("/tmp/other.sock"));
        assert_eq!(
            config.store.database,
            PathBuf::from("/tmp/d/state/occcd.db")
        );
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn relative_dev_folder_becomes_absolute() {
        let cli = Cli::parse_from(["occcd", "--dev", ".occcd-dev", "serve"]);
        assert!(matches!(cli.command, Some(Command::Serve)));
        let config = cli.effective_config().unwrap();
        assert!(config.socket.path.is_absolute());
        assert!(
            config.socket.path.ends_with(".occcd-dev/occcd.sock"),
            "{:?}",
            config.socket.path
        );
    }
}
