//! `occcctl`: occcd from the command line.

mod audit;
mod auth;
mod backup;
mod config;
mod elevate;
mod exit;
mod integrity;
mod integrity_admin;
mod key_file;
mod output;
mod private;
mod prompt;
mod skills;
mod time;
mod token_file;
mod users;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use occc_client::{
    ClientError, ConnectOptions, OcccClient, proto as pb,
    proto_health::health_check_response::ServingStatus,
};
use serde_json::json;

/// Talk to occcd: log in, administer accounts and sessions, read the audit log, watch the container.
#[derive(Debug, Parser)]
#[command(name = "occcctl", version, after_help = exit::EXIT_CODES)]
struct Cli {
    #[cfg_attr(
        all(unix, not(target_os = "macos")),
        doc = "Daemon socket. Default: /run/occcd/occcd.sock (or DIR/occcd.sock with --dev)."
    )]
    #[cfg_attr(
        target_os = "macos",
        doc = "Daemon socket. Default: /var/run/occcd/occcd.sock (or DIR/occcd.sock with --dev)."
    )]
    #[cfg_attr(
        windows,
        doc = r"Daemon pipe. Default: \\.\pipe\occcd (or DIR's own pipe with --dev)."
    )]
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
    /// Accounts: list, invite, change role, disable, enable, delete, reset TOTP, unlock, link an OS account.
    Users {
        #[command(subcommand)]
        action: users::UsersCommand,
    },
    /// Sessions: list (everyone's, or --active), revoke.
    Sessions {
        #[command(subcommand)]
        action: users::SessionsCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print occcctl's man page (roff), e.g. `occcctl man > occcctl.1`.
    Man,
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
        /// Your username (default: the last one that logged in here, else your OS account's name).
        #[arg(long)]
        username: Option<String>,
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
        action: integrity_admin::IntegrityCommand,
    },
    /// The OpenClaw container: start, stop, restart, status, logs.
    Env {
        #[command(subcommand)]
        action: integrity_admin::EnvCommand,
    },
    /// OpenClaw skills: submit, review, approve, reject, revoke.
    Skills {
        #[command(subcommand)]
        action: SkillsCommand,
    },
    /// Write a backup of occcd's store to FILE (super-admin, elevate first;
    /// 0600, never over a file). Restore it on the host with `occcd restore`.
    Backup {
        /// Where to write it.
        file: PathBuf,
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
    if let Err(err) = &outcome {
        if cli.json {
            println!(
                "{}",
                json!({ "socket": options.socket_path, "error": err.to_string(), "exit_code": exit::code_for(err) })
            );
        } else {
            eprintln!("occcctl: {err}");
        }
    }
    exit::exit_code(&outcome)
}

async fn run(cli: &Cli, options: &ConnectOptions) -> Result<bool, ClientError> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "occcctl", &mut std::io::stdout());
            return Ok(true);
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .map_err(|err| ClientError::Input(format!("cannot write the man page: {err}")))?;
            return Ok(true);
        }
        _ => {}
    }
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
            recovery,
            password_stdin,
        } => {
            let username = match username.clone().or_else(token_file::default_username) {
                Some(name) => name,
                None => return Err(ClientError::Input("give --username".to_owned())),
            };
            let (user, method) = if *recovery {
                let user = auth::login(&anonymous, &username, true, *password_stdin).await?;
                (user, "recovery code")
            } else {
                let (session, method) =
                    auth::login_chain(&anonymous, &username, *password_stdin).await?;
                let user = auth::whoami(&session).await?.user.unwrap_or_default();
                (user, method.as_str_name())
            };
            token_file::remember_username(&username);
            print_login(cli, &user.username, user.role(), method);
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
        Command::Integrity { action } => integrity_admin::run(&session, action, cli.json).await,
        Command::Env { action } => integrity_admin::env(&session, action, cli.json).await,
        Command::Skills { action } => skills::run(&session, action, cli.json).await,
        Command::Audit { action } => audit::run(&session, action, cli.json).await,
        // Answered above, before connecting.
        Command::Completions { .. } | Command::Man => Ok(true),
        Command::Users { action } => users::users(&session, action, cli.json).await,
        Command::Sessions { action } => users::sessions(&session, action, cli.json).await,
        Command::Config { container, action } => {
            config::run(&session, container, action, cli.json).await
        }
        Command::Backup { file } => backup::run(&session, file, cli.json).await,
        Command::Whoami => {
            let me = auth::whoami(&session).await?;
            let user = me.user.clone().unwrap_or_default();
            if cli.json {
                // The API's own message (serde on the generated type).
                let text = serde_json::to_string(&me)
                    .map_err(|err| ClientError::Input(err.to_string()))?;
                println!("{text}");
            } else {
                println!("{} ({})", user.username, users::role_name(user.role()));
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
            users::role_name(role)
        );
    }
}

async fn status(
    cli: &Cli,
    options: &ConnectOptions,
    client: &OcccClient,
) -> Result<bool, ClientError> {
    let health = client.health().await?;
    let info = client.daemon_info().await?;
    // Services that do not serve, and why ("" is the daemon as a whole).
    let not_serving: Vec<_> = info.services.iter().filter(|s| !s.serving).collect();
    if cli.json {
        let services: Vec<_> = info
            .services
            .iter()
            .map(|s| json!({ "service": s.service, "serving": s.serving, "reason": s.reason }))
            .collect();
        let value = json!({
            "socket": options.socket_path,
            "health": health.as_str_name(),
            "version": info.version,
            "api_version": info.api_version,
            "uptime_seconds": info.uptime_seconds,
            "started_at_unix_ms": info.started_at_unix_ms,
            "services": services,
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
        for service in not_serving {
            let name = match service.service.as_str() {
                "" => "occcd",
                name => name.strip_prefix("occc.v1.").unwrap_or(name),
            };
            println!("not serving: {name}: {}", service.reason);
        }
    }
    Ok(health == ServingStatus::Serving)
}
