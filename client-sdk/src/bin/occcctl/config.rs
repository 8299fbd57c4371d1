//! `occcctl config show | edit | diff | versions | restore`: OpenClaw's
//! config through occcd.
//!
//! `edit` copies the text into a private temporary file (0600, removed
//! afterwards, whatever happens), opens `$EDITOR` on it, shows the policy
//! diff and the line diff, asks to confirm, and writes it over the version
//! it started from. Where the daemon asks for re-authentication, it asks
//! for a TOTP code and tries once more.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use occc_client::{ClientError, OcccClient, proto as pb};
use serde_json::json;

use crate::{
    auth::{self, ElevateWith},
    elevate::elevating,
};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config (secrets redacted unless elevated), or a stored version.
    Show {
        /// A stored version's number instead of the file.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Edit it in $EDITOR, see the policy diff, confirm, write (admin, elevated).
    Edit {
        /// The audit note (asked for when missing).
        #[arg(long)]
        note: Option<String>,
        /// Write without asking to confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Unified diff between stored versions (0: the file on disk).
    Diff {
        /// From this version.
        from: i64,
        /// To this version (default: the file on disk).
        #[arg(default_value_t = 0)]
        to: i64,
    },
    /// Stored versions, newest first.
    Versions,
    /// Write a stored version back (super-admin, elevated).
    Restore {
        /// The version's number.
        number: i64,
        /// The audit note.
        #[arg(long)]
        note: String,
        /// Restore without asking to confirm.
        #[arg(long)]
        yes: bool,
    },
}

fn change_json(c: &pb::PolicyChange) -> serde_json::Value {
    json!({"path": c.path, "before": c.before, "after": c.after, "risk": c.risk, "loosens": c.loosens})
}

fn version_json(v: &pb::ConfigVersion) -> serde_json::Value {
    json!({
        "container": v.container, "number": v.number, "version": v.version, "size": v.size,
        "origin": v.origin, "author": v.author, "created_at_unix_ms": v.created_at_ms,
        "note": v.note, "lines_added": v.lines_added, "lines_removed": v.lines_removed,
        "changes": v.changes.iter().map(change_json).collect::<Vec<_>>(),
        "restored_from": v.restored_from,
    })
}

fn print_changes(changes: &[pb::PolicyChange]) {
    for c in changes {
        let or_absent = |v: &str| {
            if v.is_empty() {
                "(absent)".to_owned()
            } else {
                v.to_owned()
            }
        };
        let mark = if c.loosens { "WEAKENS" } else { "changes" };
        println!(
            "  {mark} {}: {} -> {}{}",
            c.path,
            or_absent(&c.before),
            or_absent(&c.after),
            if c.risk.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.risk)
            }
        );
    }
}

/// Prints the config (or stored version `number`).
pub async fn show(
    client: &OcccClient,
    container: &str,
    number: Option<i64>,
    as_json: bool,
) -> Result<bool, ClientError> {
    if let Some(number) = number {
        let reply = client
            .config()
            .get_config_version(pb::ConfigVersionRef {
                container: container.to_owned(),
                number,
            })
            .await?
            .into_inner();
        if as_json {
            println!(
                "{}",
                json!({"version": reply.version.as_ref().map(version_json), "text": reply.text, "redacted": reply.redacted})
            );
        } else {
            print!("{}", reply.text);
        }
        return Ok(true);
    }
    let file = client
        .config()
        .get_config(pb::GetConfigRequest {
            container: container.to_owned(),
        })
        .await?
        .into_inner();
    if as_json {
        let problems: Vec<_> = file
            .problems
            .iter()
            .map(|p| json!({"line": p.line, "column": p.column, "path": p.path, "message": p.message}))
            .collect();
        println!(
            "{}",
            json!({"container": file.container, "path": file.path, "exists": file.exists,
                   "version": file.version, "redacted": file.redacted, "text": file.text,
                   "problems": problems, "latest_number": file.latest_number, "accepted": file.accepted})
        );
    } else {
        eprintln!(
            "# {} ({}), version {}{}{}",
            file.path,
            file.container,
            file.version.get(..12).unwrap_or("none"),
            if file.redacted {
                ", secrets redacted (elevate to see them)"
            } else {
                ""
            },
            if file.accepted || !file.exists {
                ""
            } else {
                ", CHANGED OUTSIDE occcd"
            }
        );
        for p in &file.problems {
            eprintln!("# problem: {} {}", p.path, p.message);
        }
        print!("{}", file.text);
    }
    Ok(file.problems.is_empty())
}

/// Lists stored versions, newest first.
pub async fn versions(
    client: &OcccClient,
    container: &str,
    as_json: bool,
) -> Result<bool, ClientError> {
    let list = client
        .config()
        .list_config_versions(pb::ListConfigVersionsRequest {
            container: container.to_owned(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if as_json {
        println!(
            "{}",
            json!({"versions": list.versions.iter().map(version_json).collect::<Vec<_>>()})
        );
        return Ok(true);
    }
    for v in &list.versions {
        println!(
            "#{:<4} {} {:<9} by {:<16} +{} -{} {}",
            v.number,
            v.version.get(..12).unwrap_or(""),
            v.origin,
            v.author,
            v.lines_added,
            v.lines_removed,
            v.note.lines().next().unwrap_or("")
        );
        print_changes(&v.changes);
    }
    if list.versions.is_empty() {
        println!("no stored versions");
    }
    Ok(true)
}

/// Prints the unified diff from `from` to `to` (0: the file on disk).
pub async fn diff(
    client: &OcccClient,
    container: &str,
    from: i64,
    to: i64,
    as_json: bool,
) -> Result<bool, ClientError> {
    let reply = client
        .config()
        .diff_config_versions(pb::DiffConfigVersionsRequest {
            container: container.to_owned(),
            from_number: from,
            to_number: to,
        })
        .await?
        .into_inner();
    if as_json {
        println!(
            "{}",
            json!({"diff": reply.diff, "redacted": reply.redacted})
        );
    } else {
        print!("{}", reply.diff);
    }
    Ok(true)
}

fn ask(question: &str) -> Result<String, ClientError> {
    eprint!("{question} ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| ClientError::Input(format!("cannot read the answer: {err}")))?;
    Ok(answer.trim().to_owned())
}

/// A private temporary file in a private (0700) folder, both removed when
/// dropped.
struct PrivateCopy {
    folder: PathBuf,
    file: PathBuf,
}

impl PrivateCopy {
    fn create(text: &str) -> Result<Self, ClientError> {
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| ClientError::Input("no randomness for a temporary name".to_owned()))?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let folder = std::env::temp_dir().join(format!("occcctl-config-{hex}"));
        crate::private::folder_builder()
            .create(&folder)
            .map_err(|err| {
                ClientError::Input(format!("cannot create {}: {err}", folder.display()))
            })?;
        let copy = Self {
            file: folder.join("openclaw.json5"),
            folder,
        };
        let mut file = crate::private::file_options()
            .write(true)
            .create_new(true)
            .open(&copy.file)
            .map_err(|err| {
                ClientError::Input(format!("cannot create {}: {err}", copy.file.display()))
            })?;
        file.write_all(text.as_bytes()).map_err(|err| {
            ClientError::Input(format!("cannot write {}: {err}", copy.file.display()))
        })?;
        Ok(copy)
    }

    fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        // The editor's own swap and backup files go with the folder.
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Opens `$EDITOR` (else `vi`) on `path`.
fn run_editor(path: &Path) -> Result<(), ClientError> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_owned());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|err| ClientError::Input(format!("cannot run the editor ({editor}): {err}")))?;
    if !status.success() {
        return Err(ClientError::Input(format!(
            "the editor ({editor}) failed: {status}; nothing was written"
        )));
    }
    Ok(())
}

/// Edits the config: `$EDITOR`, policy diff, confirm, write.
pub async fn edit(
    client: &OcccClient,
    container: &str,
    note: Option<String>,
    yes: bool,
) -> Result<bool, ClientError> {
    let get = || async {
        client
            .config()
            .get_config(pb::GetConfigRequest {
                container: container.to_owned(),
            })
            .await
    };
    let mut file = get().await?.into_inner();
    if file.redacted {
        // Editing a redacted copy would write the placeholders back.
        eprintln!("the text is redacted until you re-authenticate");
        auth::elevate(client, false, ElevateWith::Totp).await?;
        file = get().await?.into_inner();
        if file.redacted {
            return Err(ClientError::Input(
                "only an elevated admin sees the text to edit".to_owned(),
            ));
        }
    }
    let copy = PrivateCopy::create(&file.text)?;
    run_editor(copy.path())?;
    let edited = std::fs::read_to_string(copy.path())
        .map_err(|err| ClientError::Input(format!("cannot read the edited copy: {err}")))?;
    drop(copy);
    if edited == file.text {
        println!("no change");
        return Ok(true);
    }
    let request = |text: String, note: String| pb::UpdateConfigRequest {
        container: container.to_owned(),
        expected_version: file.version.clone(),
        text,
        note,
    };
    let preview = client
        .config()
        .check_config(request(edited.clone(), String::new()))
        .await?
        .into_inner();
    print!("{}", preview.diff);
    if preview.changes.is_empty() {
        println!("no security-relevant setting changes");
    } else {
        println!("security-relevant changes:");
        print_changes(&preview.changes);
        if preview.needs_super_admin {
            println!("this edit weakens security: only a super-admin can make it");
        }
    }
    if !yes && !ask("Write it? [y/N]")?.eq_ignore_ascii_case("y") {
        println!("nothing written");
        return Ok(false);
    }
    let note = match note {
        Some(note) => note,
        None => ask("Why (a note for the audit log):")?,
    };
    let written = elevating(client, || async {
        client
            .config()
            .update_config(request(edited.clone(), note.clone()))
            .await
    })
    .await?
    .into_inner();
    match written.stored {
        Some(v) => println!(
            "written: version #{} ({})",
            v.number,
            v.version.get(..12).unwrap_or("")
        ),
        None => println!("unchanged"),
    }
    Ok(true)
}

/// Writes stored version `number` back (super-admin).
pub async fn restore(
    client: &OcccClient,
    container: &str,
    number: i64,
    note: &str,
    yes: bool,
) -> Result<bool, ClientError> {
    let current = client
        .config()
        .get_config(pb::GetConfigRequest {
            container: container.to_owned(),
        })
        .await?
        .into_inner();
    diff(client, container, 0, number, false).await?;
    if !yes && !ask(&format!("Restore version {number}? [y/N]"))?.eq_ignore_ascii_case("y") {
        println!("nothing restored");
        return Ok(false);
    }
    let written = elevating(client, || async {
        client
            .config()
            .restore_config_version(pb::RestoreConfigVersionRequest {
                container: container.to_owned(),
                number,
                expected_version: current.version.clone(),
                note: note.to_owned(),
            })
            .await
    })
    .await?
    .into_inner();
    if let Some(v) = written.stored {
        println!("restored version {number} as version #{}", v.number);
    } else {
        println!("version {number} is already the file");
    }
    Ok(true)
}

/// Runs `action`.
pub async fn run(
    session: &OcccClient,
    container: &str,
    action: &ConfigCommand,
    as_json: bool,
) -> Result<bool, ClientError> {
    match action {
        ConfigCommand::Show { version } => show(session, container, *version, as_json).await,
        ConfigCommand::Edit { note, yes } => edit(session, container, note.clone(), *yes).await,
        ConfigCommand::Diff { from, to } => diff(session, container, *from, *to, as_json).await,
        ConfigCommand::Versions => versions(session, container, as_json).await,
        ConfigCommand::Restore { number, note, yes } => {
            restore(session, container, *number, note, *yes).await
        }
    }
}
