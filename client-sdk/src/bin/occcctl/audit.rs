//! `occcctl audit verify | tail | export | pubkey | verify-export`: reading
//! the audit log and checking exports offline.

use std::{
    io::{BufReader, Write},
    path::{Path, PathBuf},
};

use clap::Subcommand;
use occc_audit_format::{EntryLine, ExportReport, verify_export};
use occc_client::{ClientError, OcccClient, proto as pb};
use tokio_stream::StreamExt;

use crate::{output::print_json, time::format_unix_ms};

/// `occcctl audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain and check every signed checkpoint (operator and up).
    Verify,
    /// The newest entries, oldest first; with --follow, then new ones as they come (admin).
    Tail {
        /// How many of the newest entries to show first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep following new entries until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only entries of this kind, e.g. login_failed.
        #[arg(long, default_value = "")]
        kind: String,
        /// Only entries of this occcd user.
        #[arg(long, default_value = "")]
        actor: String,
    },
    /// Write the log as verifiable JSON Lines to FILE (admin; created 0600, never overwritten).
    Export {
        /// Where to write it.
        file: PathBuf,
        /// Start at this entry (default: the beginning).
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// Print the Ed25519 key exports are signed with (hex).
    Pubkey,
    /// Check an export offline: order, completeness, no edits, no truncation.
    VerifyExport {
        /// The export.
        file: PathBuf,
        /// The daemon's public key (hex), pinned beforehand with `audit pubkey`.
        #[arg(long, value_name = "HEX")]
        pubkey: String,
    },
}

/// Runs `command` that needs the daemon.
pub async fn run(
    client: &OcccClient,
    command: &AuditCommand,
    json: bool,
) -> Result<bool, ClientError> {
    match command {
        AuditCommand::Verify => verify(client, json).await,
        AuditCommand::Tail {
            lines,
            follow,
            kind,
            actor,
        } => tail(client, *lines, *follow, kind, actor, json).await,
        AuditCommand::Export { file, from } => export(client, file, *from, json).await,
        AuditCommand::Pubkey => pubkey(client, json).await,
        AuditCommand::VerifyExport { file, pubkey } => verify_file(file, pubkey, json),
    }
}

async fn verify(client: &OcccClient, json: bool) -> Result<bool, ClientError> {
    let report = client.verify_audit_chain().await?;
    let broken = report.first_broken.as_ref();
    if json {
        print_json(&report)?;
    } else if let Some(broken) = broken {
        println!(
            "audit log broken at entry {}: {}",
            broken.sequence, broken.reason
        );
    } else {
        println!(
            "audit log intact: {} entries and every signed checkpoint verified",
            report.entries_checked
        );
    }
    Ok(broken.is_none())
}

fn to_line(entry: pb::AuditEntry) -> EntryLine {
    EntryLine {
        sequence: entry.sequence,
        at_unix_ms: entry.at_unix_ms,
        kind: entry.kind,
        actor: entry.actor,
        actor_uid: entry.actor_uid,
        actor_gid: entry.actor_gid,
        actor_pid: entry.actor_pid,
        detail_json: entry.detail_json,
        entry_hash_hex: entry.entry_hash_hex,
    }
}

fn print_entry(entry: pb::AuditEntry, json: bool) -> Result<(), ClientError> {
    let line = to_line(entry);
    if json {
        let text =
            serde_json::to_string(&line).map_err(|err| ClientError::Input(err.to_string()))?;
        println!("{text}");
    } else {
        let who = match (line.actor.as_str(), line.actor_uid) {
            ("", Some(uid)) => format!("uid {uid}"),
            ("", None) => "occcd".to_owned(),
            (actor, _) => actor.to_owned(),
        };
        println!(
            "{:>7}  {}  {:<24} {:<12} {}",
            line.sequence,
            format_unix_ms(line.at_unix_ms),
            line.kind,
            who,
            line.detail_json
        );
    }
    Ok(())
}

async fn tail(
    client: &OcccClient,
    lines: u32,
    follow: bool,
    kind: &str,
    actor: &str,
    json: bool,
) -> Result<bool, ClientError> {
    // The head before listing: a filtered page may end well below it, and the
    // watch must start where the listing stopped looking, not "now".
    let head = client
        .audit()
        .list_audit_entries(pb::ListAuditEntriesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries
        .first()
        .map_or(0, |entry| entry.sequence);
    let page = client
        .audit()
        .list_audit_entries(pb::ListAuditEntriesRequest {
            page_size: lines.clamp(1, 500),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let newest = page
        .entries
        .first()
        .map_or(head, |entry| entry.sequence.max(head));
    for entry in page.entries.into_iter().rev() {
        print_entry(entry, json)?;
    }
    if !follow {
        return Ok(true);
    }
    let mut stream = client
        .audit()
        .watch_audit(pb::WatchAuditRequest {
            after_sequence: Some(newest),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
        })
        .await?
        .into_inner();
    while let Some(entry) = stream.next().await {
        print_entry(entry?, json)?;
    }
    Ok(true)
}

async fn export(
    client: &OcccClient,
    file: &Path,
    from: u64,
    json: bool,
) -> Result<bool, ClientError> {
    let mut out = crate::private::file_options()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|err| ClientError::Input(format!("cannot create {}: {err}", file.display())))?;
    let mut stream = client
        .audit()
        .export_audit(pb::ExportAuditRequest {
            first_sequence: from,
        })
        .await?
        .into_inner();
    let mut count = 0_u64;
    let write_error =
        |err: std::io::Error| ClientError::Input(format!("writing {}: {err}", file.display()));
    while let Some(batch) = stream.next().await {
        for line in batch?.lines {
            out.write_all(line.as_bytes()).map_err(write_error)?;
            out.write_all(b"\n").map_err(write_error)?;
            count += 1;
        }
    }
    out.sync_all().map_err(write_error)?;
    if json {
        println!("{}", serde_json::json!({ "file": file, "lines": count }));
    } else {
        println!(
            "wrote {count} lines to {}; check it with `occcctl audit verify-export`",
            file.display()
        );
    }
    Ok(true)
}

async fn pubkey(client: &OcccClient, json: bool) -> Result<bool, ClientError> {
    let key = client
        .audit()
        .get_audit_public_key(pb::GetAuditPublicKeyRequest {})
        .await?
        .into_inner();
    if json {
        print_json(&key)?;
    } else {
        println!("{}", key.public_key_hex);
    }
    Ok(true)
}

/// Checks an export without the daemon.
pub fn verify_file(file: &Path, pubkey: &str, json: bool) -> Result<bool, ClientError> {
    let reader = std::fs::File::open(file)
        .map(BufReader::new)
        .map_err(|err| ClientError::Input(format!("cannot open {}: {err}", file.display())))?;
    match verify_export(reader, pubkey) {
        Ok(report) => {
            print_report(file, &report, json);
            Ok(true)
        }
        Err(err) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "file": file, "verified": false, "error": err.to_string() })
                );
            } else {
                println!("{}: NOT verified: {err}", file.display());
            }
            Ok(false)
        }
    }
}

fn print_report(file: &Path, report: &ExportReport, json: bool) {
    if json {
        let value = serde_json::json!({
            "file": file,
            "verified": true,
            "entries": report.entries,
            "checkpoints": report.checkpoints,
            "first_sequence": report.first_sequence,
            "last_sequence": report.last_sequence,
            "last_checkpoint_at_unix_ms": report.last_checkpoint_at_unix_ms,
        });
        println!("{value}");
    } else {
        println!(
            "{}: verified — entries {} to {} ({} entries), {} signed checkpoints, the last signed {}",
            file.display(),
            report.first_sequence,
            report.last_sequence,
            report.entries,
            report.checkpoints,
            format_unix_ms(report.last_checkpoint_at_unix_ms)
        );
    }
}
