//! `occcctl`: occcd from the command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use occc_client::{ConnectOptions, OcccClient};

/// occcctl — talk to the occcd daemon.
#[derive(Debug, Parser)]
#[command(name = "occcctl", version, about)]
struct Cli {
    /// Daemon socket. Default: /run/occcd/occcd.sock (or DIR/occcd.sock with --dev).
    #[arg(long, global = true, env = "OCCC_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Talk to a dev-mode daemon in DIR, owned by the current user.
    #[arg(long, global = true, value_name = "DIR")]
    dev: Option<PathBuf>,
    /// uid that must own the socket and run the daemon (default: 0, or yours with --dev).
    #[arg(long, global = true, value_name = "UID")]
    expect_owner: Option<u32>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Health, version and uptime of the daemon.
    Status,
}

impl Cli {
    fn connect_options(&self) -> ConnectOptions {
        let mut options = match &self.dev {
            Some(dir) => ConnectOptions::dev(dir),
            None => ConnectOptions::system(),
        };
        if let Some(socket) = &self.socket {
            options.socket_path.clone_from(socket);
        }
        if let Some(uid) = self.expect_owner {
            options.expected_owner_uid = uid;
        }
        options
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Status => status(&cli).await,
    }
}

async fn status(cli: &Cli) -> ExitCode {
    let options = cli.connect_options();
    let outcome = async {
        let client = OcccClient::connect(&options).await?;
        let health = client.health().await?;
        let info = client.daemon_info().await?;
        Ok::<_, occc_client::ClientError>((health, info))
    }
    .await;
    match outcome {
        Ok((health, info)) => {
            let serving =
                health == occc_client::proto_health::health_check_response::ServingStatus::Serving;
            if cli.json {
                let value = serde_json::json!({
                    "socket": options.socket_path,
                    "health": health.as_str_name(),
                    "version": info.version,
                    "api_version": info.api_version,
                    "uptime_seconds": info.uptime_seconds,
                    "started_at_unix_ms": info.started_at_unix_ms,
                });
                println!("{value}");
            } else {
                println!(
                    "occcd {} ({}) — {}",
                    info.version,
                    info.api_version,
                    health.as_str_name()
                );
                println!("socket: {}", options.socket_path.display());
                println!("uptime: {}", human_duration(info.uptime_seconds));
            }
            if serving {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "socket": options.socket_path, "error": err.to_string() })
                );
            } else {
                eprintln!("occcctl: {err}");
            }
            ExitCode::FAILURE
        }
    }
}

fn human_duration(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m {seconds}s"),
        _ => format!("{days}d {hours}h {minutes}m"),
    }
}
