//! The `occcd` binary: parse flags, set up logging, run a command.

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use occcd::{
    audit::{ChainHasher, checkpoint::CheckpointSigner, verify_chain, verify_checkpoints},
    backup,
    cli::{AuditCommand, Cli, Command, ConfigCommand},
    clock::SystemClock,
    config::Config,
    crypto::{KeyPurpose, Subkey},
    lifecycle::{
        Reloader, Signals, StateLock, forbid_core_dumps, keep_heap_returnable, open_store, serve,
        state_folder_of, supervision::ServiceManager,
    },
    logging::init_logging,
    store::{self, Store},
    transport::{PassedSocket, take_passed_socket},
};

/// Every heap block the daemon's Rust code frees is zeroed first, so a
/// password, code or token that passed through any buffer — occcd's own,
/// prost's, tonic's, hyper's — does not linger in freed memory.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    // Before any thread or large allocation: freed big blocks go back to
    // the kernel (lifecycle::heap says why).
    let heap_settings_refused = keep_heap_returnable();
    // Before anything can open SQLite: its freed blocks are wiped too.
    let sqlite_frees_wiped = store::sqlite_heap::install();
    // Before SQLCipher initializes libcrypto: no cleanup under threads at exit.
    #[cfg(target_os = "linux")]
    let libcrypto_kept = store::libcrypto::keep_until_exit();
    // Everything the daemon creates is private unless it widens it on purpose.
    #[cfg(unix)]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // Before any command can open the store: no core file of this process.
    if let Err(err) = forbid_core_dumps() {
        return fail(&err, ExitCode::FAILURE);
    }
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Man)) {
        let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).section("8");
        return match page.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err, ExitCode::FAILURE),
        };
    }
    let config = match cli.effective_config() {
        Ok(config) => config,
        Err(err) => return fail(&err, ExitCode::from(2)),
    };
    let log_filter = match init_logging(&config.log) {
        Ok(filter) => filter,
        Err(err) => return fail(&err, ExitCode::from(2)),
    };
    if !sqlite_frees_wiped {
        tracing::warn!(
            "SQLite initialized before its wiping allocator was installed: SQLCipher's memory security wipes its frees instead, at a cost per block"
        );
    }
    #[cfg(target_os = "linux")]
    if let Err(err) = libcrypto_kept {
        tracing::warn!(
            error = err,
            "libcrypto keeps its exit-time cleanup: a thread still in it at exit may crash the process"
        );
    }
    if !heap_settings_refused.is_empty() {
        tracing::warn!(refused = ?heap_settings_refused, "the allocator refused a setting: freed memory may stay with the daemon");
    }
    let command = cli.command.clone().unwrap_or(Command::Serve);
    // Before the runtime's threads: taking it edits the environment.
    let passed_socket = match command {
        Command::Serve => match take_passed_socket(&config.socket) {
            Ok(passed) => passed,
            Err(err) => return fail(&err, ExitCode::FAILURE),
        },
        _ => None,
    };
    // Only the serving daemon reports to the service manager.
    let manager = match command {
        Command::Serve => ServiceManager::from_env(),
        _ => ServiceManager::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, ExitCode::FAILURE),
    };
    let reloader = Reloader::new(
        config.clone(),
        Box::new(move || cli.effective_config()),
        Some(log_filter),
    );
    let code = runtime.block_on(run(command, config, reloader, passed_socket, manager));
    // A name lookup of an event output may still run in a blocking thread:
    // it does not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run(
    command: Command,
    config: Config,
    reloader: Reloader,
    passed_socket: Option<PassedSocket>,
    manager: ServiceManager,
) -> ExitCode {
    match command {
        Command::Serve => {
            let signals = match Signals::install() {
                Ok(signals) => signals,
                Err(err) => return fail(&err, ExitCode::FAILURE),
            };
            let requests = signals.forward();
            match serve(
                &config,
                Arc::new(SystemClock),
                requests,
                reloader,
                passed_socket,
                manager,
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(&err, ExitCode::FAILURE),
            }
        }
        Command::Backup { file } => back_up(&config, &file).await,
        Command::Restore { file, accept_loss } => restore(&config, &file, accept_loss).await,
        Command::Rekey { new_key_file } => rekey(&config, new_key_file.as_deref()).await,
        Command::Audit {
            action: AuditCommand::Verify,
        } => verify_audit(&config).await,
        Command::Audit {
            action: AuditCommand::Pubkey,
        } => print_audit_public_key(&config).await,
        // Answered before the config is read (see `main`).
        Command::Man => ExitCode::SUCCESS,
        Command::Config {
            action: ConfigCommand::Show,
        } => match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err, ExitCode::FAILURE),
        },
    }
}

/// What a tool beside the daemon works with: the store (under the shared
/// lock), its key and the audit keys — the master key is gone.
struct Tool {
    _reading: StateLock,
    store: Store,
    database_key: Subkey,
    hasher: Arc<ChainHasher>,
    signer: CheckpointSigner,
}

/// Opens the store for a tool, or says why not (exit code 2).
async fn open_for_tool(config: &Config) -> Result<Tool, ExitCode> {
    if !config.store.database.exists() {
        eprintln!("occcd: no database at {}", config.store.database.display());
        return Err(ExitCode::from(2));
    }
    let reading = StateLock::reading(&state_folder_of(&config.store.database))
        .map_err(|err| fail(&err, ExitCode::from(2)))?;
    let unlocked = open_store(config)
        .await
        .map_err(|err| fail(&err, ExitCode::from(2)))?;
    match CheckpointSigner::of_keys(&unlocked.keys) {
        Ok((hasher, signer)) => Ok(Tool {
            _reading: reading,
            database_key: unlocked.keys.derive(KeyPurpose::Database),
            store: unlocked.store,
            hasher,
            signer,
        }),
        Err(err) => {
            unlocked.store.close().await;
            Err(fail(&err, ExitCode::from(2)))
        }
    }
}

async fn verify_audit(config: &Config) -> ExitCode {
    let tool = match open_for_tool(config).await {
        Ok(tool) => tool,
        Err(code) => return code,
    };
    let (store, hasher, signer) = (&tool.store, &tool.hasher, &tool.signer);
    let report = match verify_chain(store, hasher).await {
        Ok(mut report) if report.first_broken.is_none() => {
            verify_checkpoints(store, signer.public_key())
                .await
                .map(|broken| {
                    report.first_broken = broken;
                    report
                })
        }
        other => other,
    };
    store.close().await;
    match report {
        Ok(report) => match report.first_broken {
            None => {
                println!(
                    "audit chain intact: {} entries verified",
                    report.entries_checked
                );
                ExitCode::SUCCESS
            }
            Some(broken) => {
                println!(
                    "audit chain broken at entry {}: {}",
                    broken.sequence, broken.reason
                );
                ExitCode::FAILURE
            }
        },
        Err(err) => fail(&err, ExitCode::from(2)),
    }
}

async fn print_audit_public_key(config: &Config) -> ExitCode {
    let tool = match open_for_tool(config).await {
        Ok(tool) => tool,
        Err(code) => return code,
    };
    tool.store.close().await;
    println!("{}", hex::encode(tool.signer.public_key()));
    ExitCode::SUCCESS
}

async fn back_up(config: &Config, file: &std::path::Path) -> ExitCode {
    let tool = match open_for_tool(config).await {
        Ok(tool) => tool,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let store = &tool.store;
    let written =
        backup::back_up(store, &tool.database_key, &tool.signer, &SystemClock, file).await;
    store.close().await;
    match written {
        Ok(written) => {
            println!(
                "backup written to {}: {} bytes, audit entries 1 to {}, database sha256 {}, in {:.1} s",
                file.display(),
                written.file_bytes,
                written.manifest.audit_head,
                written.manifest.database_sha256,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, ExitCode::FAILURE),
    }
}

async fn restore(config: &Config, file: &std::path::Path, accept_loss: bool) -> ExitCode {
    match backup::restore(config, file, Arc::new(SystemClock), accept_loss).await {
        Ok(restored) => {
            let made =
                chrono::DateTime::from_timestamp_millis(restored.manifest.created_at_unix_ms)
                    .map_or_else(String::new, |at| at.to_rfc3339());
            println!(
                "restored the backup made {made}: the audit log continues after entry {} with a store_restored entry",
                restored.manifest.audit_head
            );
            match (restored.kept_as, restored.replaced_head) {
                (Some(kept), Some(head)) => println!(
                    "the replaced store (audit entries up to {head}) is kept as {}",
                    kept.display()
                ),
                (Some(kept), None) => println!(
                    "the replaced store (it did not open with this key) is kept as {}",
                    kept.display()
                ),
                _ => {}
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, ExitCode::FAILURE),
    }
}

fn fail(err: &dyn std::fmt::Display, code: ExitCode) -> ExitCode {
    eprintln!("occcd: {err}");
    code
}

async fn rekey(config: &Config, new_key_file: Option<&std::path::Path>) -> ExitCode {
    let rotation = match occcd::rekey::rekey(config, new_key_file, Arc::new(SystemClock)).await {
        Ok(rotation) => rotation,
        Err(err) => return fail(&err, ExitCode::FAILURE),
    };
    let key = rotation.new_key_file.display();
    match rotation.rotated {
        occcd::rekey::Rotated::Now { resealed_values } => println!(
            "the store opened with the old key; it now opens with the new key in {key} \
             ({resealed_values} sealed values re-sealed, a master_key_rotated entry appended)"
        ),
        occcd::rekey::Rotated::Earlier => println!(
            "the store already opened with the new key in {key}: an interrupted rotation is \
             finished"
        ),
    }
    if rotation.credential {
        println!(
            "now encrypt it into the credential and remove the file:\n  systemd-creds encrypt \
             --name={name} {key} /etc/credstore.encrypted/{name} && shred -u {key}",
            name = config.store.credential_name
        );
    }
    println!("take a new backup: older backups open only with the old key");
    ExitCode::SUCCESS
}
