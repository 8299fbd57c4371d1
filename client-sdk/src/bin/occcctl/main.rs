//! `occcctl`: occcd from the command line.

mod audit;
mod auth;
mod config;
mod integrity;
mod key_file;
mod skills;
mod time;
mod token_file;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use occc_client::{
    ClientError, ConnectOptions, OcccClient, proto as pb,
    proto_health::health_check_response::ServingStatus,
};
use serde_json::json;

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
    /// Read, follow, export and verify the audit log.
    Audit {
        #[command(subcommand)]
        action: audit::AuditCommand,
    },
    /// First run: create the first super-admin with the bootstrap token file.
    Bootstrap {
        /// The token file the daemon wrote (its state folder/bootstrap.token).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// The super-admin's username.
        #[arg(long)]
        username: String,
        /// Read the password from standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set up your invited account: password, then TOTP (a QR code).
    Enroll {
        /// The enrolment token a super-admin gave you.
        #[arg(long)]
        token: String,
        /// Read the password from standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log in with password and TOTP (or a recovery code); saves the session.
    Login {
        /// Your username.
        #[arg(long)]
        username: String,
        /// Use a recovery code instead of a TOTP code.
        #[arg(long)]
        recovery: bool,
        /// Read password and code from standard input, one per line.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the saved session.
    Logout,
    /// Re-authenticate the saved session with a TOTP code (for sensitive operations).
    Elevate {
        /// Read the password (with --with-password) and the code from standard
        /// input, one per line, instead of prompts.
        #[arg(long)]
        password_stdin: bool,
        /// Re-prove the password too: needed to change credentials (password,
        /// TOTP, recovery codes, device keys).
        #[arg(long)]
        with_password: bool,
        /// Use the host's PAM stack (fingerprint reader) instead of a TOTP code.
        #[arg(long, conflicts_with_all = ["password_stdin", "with_password"])]
        pam: bool,
    },
    /// Device-bound keys.
    DeviceKey {
        #[command(subcommand)]
        action: DeviceKeyCommand,
    },
    /// Who the saved session (or $OCCC_SESSION_TOKEN) belongs to.
    Whoami,
    /// Integrity of the OpenClaw container(s).
    Integrity {
        #[command(subcommand)]
        action: IntegrityCommand,
    },
    /// OpenClaw skills: submit, review, approve, reject, revoke.
    Skills {
        #[command(subcommand)]
        action: SkillsCommand,
    },
    /// OpenClaw's config (openclaw.json): show, edit, diff, versions, restore.
    Config {
        /// The watched container (default: the first with an OpenClaw config).
        #[arg(long, default_value = "", global = true)]
        container: String,
        #[command(subcommand)]
        action: config::ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SkillsCommand {
    /// Skill versions, newest first.
    List {
        /// Only versions of this skill.
        #[arg(long)]
        name: Option<String>,
        /// Only versions in this state (pending, approved, rejected, revoked).
        #[arg(long)]
        state: Option<String>,
    },
    /// One version: its files and every risk signal.
    Show {
        /// The version's tree hash.
        tree_hash: String,
    },
    /// Submit a skill folder, .tar or .zip (admin).
    Submit {
        /// The folder or archive.
        path: PathBuf,
        /// Submit the folder at PATH on the daemon's host (below skills.submit_roots).
        #[arg(long)]
        on_host: bool,
    },
    /// Approve a version (elevate first); installs it once approved.
    Approve {
        /// The version's tree hash.
        tree_hash: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: String,
    },
    /// Reject a pending version (elevate first).
    Reject {
        /// The version's tree hash.
        tree_hash: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: String,
    },
    /// Revoke an approved version and un-install it (elevate first).
    Revoke {
        /// The version's tree hash.
        tree_hash: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        note: String,
    },
    /// Files and risk that changed between two versions.
    Diff {
        /// The older version's tree hash.
        from: String,
        /// The newer version's tree hash.
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum IntegrityCommand {
    /// Health, quarantine and open findings of every monitored container
    /// (exit status 1 unless all are healthy).
    Status,
    /// Status changes and findings as they happen.
    Watch,
    /// Close open event findings of a container, with a note (admin;
    /// `elevate` first). `run-checks` never closes them.
    Acknowledge {
        /// The monitored container.
        #[arg(long)]
        container: String,
        /// An open event finding, e.g. event.exec (repeat for several).
        #[arg(long = "check", required = true)]
        checks: Vec<String>,
        /// Why these need no more action (kept in the audit log).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceKeyCommand {
    /// Create a software key for this account, register it (after `elevate
    /// --with-password`), and keep it for `login`, sealed under a passphrase
    /// (asked, or read from the file $OCCC_KEY_PASSPHRASE_FILE names).
    Register {
        /// A name for the key, e.g. the machine's.
        #[arg(long)]
        name: String,
    },
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
    let options = cli.connect_options();
    let outcome = run(&cli, &options).await;
    match outcome {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            if cli.json {
                println!(
                    "{}",
                    json!({ "socket": options.socket_path, "error": err.to_string() })
                );
            } else {
                eprintln!("occcctl: {err}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli, options: &ConnectOptions) -> Result<bool, ClientError> {
    // Offline: checking an export needs nothing but the file and the key.
    if let Command::Audit {
        action: audit::AuditCommand::VerifyExport { file, pubkey },
    } = &cli.command
    {
        return audit::verify_file(file, pubkey, cli.json);
    }
    let anonymous = OcccClient::connect(options).await?;
    let session = match token_file::load() {
        Some(token) => anonymous.with_session(token),
        None => anonymous.clone(),
    };
    match &cli.command {
        Command::Status => status(cli, options, &anonymous).await,
        Command::Bootstrap {
            token_file,
            username,
            password_stdin,
        } => auth::bootstrap(&anonymous, token_file, username, *password_stdin)
            .await
            .map(|()| true),
        Command::Enroll {
            token,
            password_stdin,
        } => auth::enroll(&anonymous, token, *password_stdin)
            .await
            .map(|()| true),
        Command::Login {
            username,
            recovery: true,
            password_stdin,
        } => {
            let user = auth::login(&anonymous, username, true, *password_stdin).await?;
            print_login(cli, &user.username, user.role(), "recovery code");
            Ok(true)
        }
        Command::Login {
            username,
            recovery: false,
            password_stdin,
        } => {
            let (session, method) =
                auth::login_chain(&anonymous, username, *password_stdin).await?;
            let me = auth::whoami(&session).await?;
            let user = me.user.unwrap_or_default();
            print_login(cli, &user.username, user.role(), method.as_str_name());
            Ok(true)
        }
        Command::Elevate {
            password_stdin,
            with_password,
            pam,
        } => {
            let with = match (*pam, *with_password) {
                (true, _) => auth::ElevateWith::Pam,
                (false, true) => auth::ElevateWith::PasswordAndTotp,
                (false, false) => auth::ElevateWith::Totp,
            };
            let elevated = auth::elevate(&session, *password_stdin, with).await?;
            let until = elevated.elevated_until_unix_ms.unwrap_or_default();
            println!(
                "elevated until {until} (unix ms) by {}",
                elevated.elevation_method
            );
            Ok(true)
        }
        Command::DeviceKey {
            action: DeviceKeyCommand::Register { name },
        } => {
            let (key, saved) = auth::register_device_key(&session, name).await?;
            println!(
                "registered device key {} ({}), saved sealed in {}; `occcctl login` will use it",
                key.key_id,
                key.platform,
                saved.display()
            );
            Ok(true)
        }
        Command::Logout => auth::logout(&session).await.map(|()| true),
        Command::Integrity {
            action: IntegrityCommand::Status,
        } => integrity::status(&session, cli.json).await,
        Command::Integrity {
            action: IntegrityCommand::Watch,
        } => integrity::watch(&session, cli.json).await,
        Command::Integrity {
            action:
                IntegrityCommand::Acknowledge {
                    container,
                    checks,
                    note,
                },
        } => {
            integrity::acknowledge(&session, container.clone(), checks.clone(), note.clone()).await
        }
        Command::Skills { action } => skills::run(&session, action, cli.json).await,
        Command::Audit { action } => audit::run(&session, action, cli.json).await,
        Command::Config { container, action } => {
            config::run(&session, container, action, cli.json).await
        }
        Command::Whoami => {
            let me = auth::whoami(&session).await?;
            let user = me.user.unwrap_or_default();
            let elevated_until = me.session.and_then(|s| s.elevated_until_unix_ms);
            if cli.json {
                let value = json!({
                    "username": user.username,
                    "role": user.role().as_str_name(),
                    "permissions": me.permissions,
                    "elevated_until_unix_ms": elevated_until,
                });
                println!("{value}");
            } else {
                println!("{} ({})", user.username, role_name(user.role()));
                println!("permissions: {}", me.permissions.join(", "));
            }
            Ok(true)
        }
    }
}

fn print_login(cli: &Cli, username: &str, role: pb::UserRole, method: &str) {
    if cli.json {
        println!(
            "{}",
            json!({ "username": username, "role": role.as_str_name(), "method": method })
        );
    } else {
        println!(
            "logged in as {username} ({}) with {method}",
            role_name(role)
        );
    }
}

fn role_name(role: pb::UserRole) -> &'static str {
    match role {
        pb::UserRole::Viewer => "viewer",
        pb::UserRole::Operator => "operator",
        pb::UserRole::Admin => "admin",
        pb::UserRole::SuperAdmin => "super-admin",
        pb::UserRole::Unspecified => "unknown",
    }
}

async fn status(
    cli: &Cli,
    options: &ConnectOptions,
    client: &OcccClient,
) -> Result<bool, ClientError> {
    let health = client.health().await?;
    let info = client.daemon_info().await?;
    if cli.json {
        let value = json!({
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
        println!("uptime: {}", time::human_duration(info.uptime_seconds));
    }
    Ok(health == ServingStatus::Serving)
}
