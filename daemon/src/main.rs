//! The `occcd` binary: parse flags, set up logging, run a command.

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use occcd::{
    audit::{ChainHasher, checkpoint::CheckpointSigner, verify_chain, verify_checkpoints},
    cli::{AuditCommand, Cli, Command, ConfigCommand},
    clock::SystemClock,
    config::Config,
    crypto::KeyPurpose,
    lifecycle::{StopSignals, forbid_core_dumps, open_store, serve},
    logging::init_logging,
};

/// Every heap block the daemon's Rust code frees is zeroed first, so a
/// password, code or token that passed through any buffer — occcd's own,
/// prost's, tonic's, hyper's — does not linger in freed memory.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    // Everything the daemon creates is private unless it widens it on purpose.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // Before any command can open the store: no core file of this process.
    if let Err(err) = forbid_core_dumps() {
        return fail(&err, ExitCode::FAILURE);
    }
    let cli = Cli::parse();
    let config = match cli.effective_config() {
        Ok(config) => config,
        Err(err) => return fail(&err, ExitCode::from(2)),
    };
    if let Err(err) = init_logging(&config.log) {
        return fail(&err, ExitCode::from(2));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, ExitCode::FAILURE),
    };
    runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => {
            let signals = match StopSignals::install() {
                Ok(signals) => signals,
                Err(err) => return fail(&err, ExitCode::FAILURE),
            };
            match serve(&config, Arc::new(SystemClock), signals.received()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(&err, ExitCode::FAILURE),
            }
        }
        Command::Audit {
            action: AuditCommand::Verify,
        } => verify_audit(&config).await,
        Command::Audit {
            action: AuditCommand::Pubkey,
        } => print_audit_public_key(&config).await,
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

async fn verify_audit(config: &Config) -> ExitCode {
    if !config.store.database.exists() {
        eprintln!("occcd: no database at {}", config.store.database.display());
        return ExitCode::from(2);
    }
    let (store, hasher, signer) = match open_store(config).await {
        Ok(unlocked) => {
            let hasher = Arc::new(ChainHasher::new(
                &unlocked.master.derive(KeyPurpose::AuditChain),
            ));
            let signer = CheckpointSigner::new(
                &unlocked.master.derive(KeyPurpose::AuditCheckpoints),
                Arc::clone(&hasher),
            );
            match signer {
                Ok(signer) => (unlocked.store, hasher, signer),
                Err(err) => return fail(&err, ExitCode::from(2)),
            }
        }
        Err(err) => return fail(&err, ExitCode::from(2)),
    };
    let report = match verify_chain(&store, &hasher).await {
        Ok(mut report) if report.first_broken.is_none() => {
            verify_checkpoints(&store, signer.public_key())
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
    if !config.store.database.exists() {
        eprintln!("occcd: no database at {}", config.store.database.display());
        return ExitCode::from(2);
    }
    let unlocked = match open_store(config).await {
        Ok(unlocked) => unlocked,
        Err(err) => return fail(&err, ExitCode::from(2)),
    };
    let hasher = Arc::new(ChainHasher::new(
        &unlocked.master.derive(KeyPurpose::AuditChain),
    ));
    let signer = CheckpointSigner::new(
        &unlocked.master.derive(KeyPurpose::AuditCheckpoints),
        hasher,
    );
    unlocked.store.close().await;
    match signer {
        Ok(signer) => {
            println!("{}", hex::encode(signer.public_key()));
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, ExitCode::from(2)),
    }
}

fn fail(err: &dyn std::fmt::Display, code: ExitCode) -> ExitCode {
    eprintln!("occcd: {err}");
    code
}
