//! `occcctl integrity …` beyond status and watch — findings, pinning a
//! baseline, releasing a quarantine, forensic snapshots — and `occcctl env …`.
//!
//! Invariant: changes go through [`elevating`]; a snapshot export is written
//! to a new 0600 file and removed again if the stream fails half-way, so a
//! partial export is never mistaken for a whole one.

use std::{io::Write, path::PathBuf};

use clap::Subcommand;
use occc_client::{ClientError, OcccClient, proto as pb};
use tokio_stream::StreamExt;

use crate::{elevate::elevating, integrity, output::print_json, time::format_unix_ms};

/// `occcctl integrity …`
#[derive(Debug, Subcommand)]
pub enum IntegrityCommand {
    /// Health, quarantine and open findings of every monitored container
    /// (exit status 1 unless all are healthy).
    Status,
    /// Status changes and findings as they happen.
    Watch,
    /// Findings recorded so far, newest first.
    Findings {
        /// Only this container.
        #[arg(long, default_value = "")]
        container: String,
        /// At most this many (default 100, at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Close open event findings of a container, with a note (admin, elevated).
    Acknowledge {
        #[arg(long)]
        container: String,
        /// An open event finding, e.g. event.exec (repeat for several).
        #[arg(long = "check", required = true)]
        checks: Vec<String>,
        /// Why these need no more action (kept in the audit log).
        #[arg(long)]
        note: String,
    },
    /// Pin the container's current state as its baseline (admin, elevated).
    Pin { container: String },
    /// Release a quarantine (super-admin, elevated), with a note.
    Release {
        container: String,
        #[arg(long)]
        note: String,
    },
    /// Forensic snapshots: list, export, verify (admin).
    Snapshots {
        #[command(subcommand)]
        action: SnapshotsCommand,
    },
}

/// `occcctl integrity snapshots …`
#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// Every snapshot, newest first.
    List,
    /// Write a snapshot (tar) to FILE (created 0600, never overwritten).
    Export { snapshot_id: String, file: PathBuf },
    /// Check a stored snapshot against its authenticated manifest.
    Verify { snapshot_id: String },
}

/// `occcctl env …`
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Start the container (refused for unsafe containers; operator).
    Start { container: String },
    /// Stop it.
    Stop { container: String },
    /// Restart it.
    Restart { container: String },
    /// Its state, image and start time.
    Status { container: String },
    /// Its log lines.
    Logs {
        container: String,
        /// Lines from the end to start with.
        #[arg(long, default_value_t = 100)]
        tail: u32,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
    },
}

/// Runs `occcctl integrity …`.
pub async fn run(
    client: &OcccClient,
    command: &IntegrityCommand,
    json: bool,
) -> Result<bool, ClientError> {
    let integrity = || client.integrity();
    match command {
        IntegrityCommand::Status => integrity::status(client, json).await,
        IntegrityCommand::Watch => integrity::watch(client, json).await,
        IntegrityCommand::Acknowledge {
            container,
            checks,
            note,
        } => integrity::acknowledge(client, container.clone(), checks.clone(), note.clone()).await,
        IntegrityCommand::Findings { container, limit } => {
            let request = pb::ListFindingsRequest {
                container: container.clone(),
                limit: *limit,
            };
            let list = integrity().list_findings(request).await?.into_inner();
            for finding in &list.findings {
                if json {
                    print_json(finding)?;
                } else {
                    println!(
                        "{}  {:<18} {:<9} {:<28} {}",
                        format_unix_ms(finding.observed_at_unix_ms),
                        finding.container,
                        format!("{:?}", finding.severity()).to_lowercase(),
                        finding.check_id,
                        finding.summary
                    );
                }
            }
            Ok(true)
        }
        IntegrityCommand::Pin { container } => {
            let request = pb::PinBaselineRequest {
                container: container.clone(),
            };
            let baseline = elevating(client, || async {
                integrity().pin_baseline(request.clone()).await
            })
            .await?
            .into_inner();
            if json {
                print_json(&baseline)?;
            } else {
                println!(
                    "pinned {} at {}: image {}, {} image files, {} host files",
                    baseline.container,
                    format_unix_ms(baseline.pinned_at_unix_ms),
                    baseline.image_id,
                    baseline.image_files.len(),
                    baseline.host_files.len()
                );
            }
            Ok(true)
        }
        IntegrityCommand::Release { container, note } => {
            let request = pb::ReleaseQuarantineRequest {
                container: container.clone(),
                note: note.clone(),
            };
            let status = elevating(client, || async {
                integrity().release_quarantine(request.clone()).await
            })
            .await?
            .into_inner();
            if json {
                print_json(&status)?;
            } else {
                println!(
                    "released {container}; sensitive operations are {}",
                    if status.locked {
                        "still locked"
                    } else {
                        "unlocked"
                    }
                );
            }
            Ok(true)
        }
        IntegrityCommand::Snapshots { action } => snapshots(client, action, json).await,
    }
}

async fn snapshots(
    client: &OcccClient,
    command: &SnapshotsCommand,
    json: bool,
) -> Result<bool, ClientError> {
    match command {
        SnapshotsCommand::List => {
            let list = client
                .integrity()
                .list_snapshots(pb::ListSnapshotsRequest {})
                .await?
                .into_inner();
            for snapshot in &list.snapshots {
                if json {
                    print_json(snapshot)?;
                } else {
                    println!(
                        "{}  {}  {:<18} {:>10} bytes  {}{}",
                        snapshot.snapshot_id,
                        format_unix_ms(snapshot.created_at_unix_ms),
                        snapshot.container,
                        snapshot.total_bytes,
                        snapshot.reason,
                        if snapshot.interrupted {
                            "  (interrupted)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(true)
        }
        SnapshotsCommand::Verify { snapshot_id } => {
            let request = pb::VerifySnapshotRequest {
                snapshot_id: snapshot_id.clone(),
            };
            let verdict = client
                .integrity()
                .verify_snapshot(request)
                .await?
                .into_inner();
            if json {
                print_json(&verdict)?;
            } else if verdict.ok {
                println!("{snapshot_id}: intact, manifest authentic");
            } else {
                println!(
                    "{snapshot_id}: NOT intact (manifest authentic: {}); mismatched: {}",
                    verdict.manifest_authentic,
                    verdict.mismatched.join(", ")
                );
            }
            Ok(verdict.ok)
        }
        SnapshotsCommand::Export { snapshot_id, file } => {
            let mut out = crate::private::file_options()
                .write(true)
                .create_new(true)
                .open(file)
                .map_err(|err| {
                    ClientError::Input(format!("cannot create {}: {err}", file.display()))
                })?;
            let written = async {
                let request = pb::ExportSnapshotRequest {
                    snapshot_id: snapshot_id.clone(),
                };
                let mut stream = client
                    .integrity()
                    .export_snapshot(request)
                    .await?
                    .into_inner();
                let mut bytes = 0_u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    out.write_all(&chunk.data).map_err(|err| {
                        ClientError::Input(format!("writing {}: {err}", file.display()))
                    })?;
                    bytes += chunk.data.len() as u64;
                }
                out.sync_all().map_err(|err| {
                    ClientError::Input(format!("writing {}: {err}", file.display()))
                })?;
                Ok::<u64, ClientError>(bytes)
            }
            .await;
            match written {
                Ok(bytes) => {
                    if !json {
                        println!("wrote {bytes} bytes to {}", file.display());
                    }
                    Ok(true)
                }
                Err(err) => {
                    let _ = std::fs::remove_file(file);
                    Err(err)
                }
            }
        }
    }
}

/// Runs `occcctl env …`.
pub async fn env(
    client: &OcccClient,
    command: &EnvCommand,
    json: bool,
) -> Result<bool, ClientError> {
    let environment = || client.environment();
    let request = |container: &String| pb::EnvironmentRequest {
        container: container.clone(),
    };
    let status = match command {
        EnvCommand::Start { container } => {
            environment().start_environment(request(container)).await?
        }
        EnvCommand::Stop { container } => {
            environment().stop_environment(request(container)).await?
        }
        EnvCommand::Restart { container } => {
            environment()
                .restart_environment(request(container))
                .await?
        }
        EnvCommand::Status { container } => {
            environment()
                .get_environment_status(request(container))
                .await?
        }
        EnvCommand::Logs {
            container,
            tail,
            follow,
        } => {
            let request = pb::StreamLogsRequest {
                container: container.clone(),
                tail: *tail,
                follow: *follow,
            };
            let mut lines = environment()
                .stream_environment_logs(request)
                .await?
                .into_inner();
            while let Some(line) = lines.next().await {
                let line = line?;
                if json {
                    print_json(&line)?;
                } else if line.stream == "stderr" {
                    eprintln!("{}", line.text.trim_end_matches('\n'));
                } else {
                    println!("{}", line.text.trim_end_matches('\n'));
                }
            }
            return Ok(true);
        }
    }
    .into_inner();
    if json {
        print_json(&status)?;
    } else {
        println!(
            "{}: {} ({}) since {}",
            status.container, status.state, status.image, status.started_at
        );
    }
    Ok(true)
}
