//! `occcctl skills list | show | submit | approve | reject | revoke | diff`:
//! skill governance from the command line.

use std::path::Path;

use occc_client::{ClientError, OcccClient, proto as pb};

use crate::output::print_json;

use super::SkillsCommand;

/// Chunk size of a submitted archive.
const CHUNK_BYTES: usize = 256 * 1024;

fn level_name(level: i32) -> &'static str {
    match pb::RiskLevel::try_from(level) {
        Ok(pb::RiskLevel::Low) => "low",
        Ok(pb::RiskLevel::Medium) => "medium",
        Ok(pb::RiskLevel::High) => "HIGH",
        Ok(pb::RiskLevel::Critical) => "CRITICAL",
        _ => "unknown",
    }
}

fn state_name(state: i32) -> &'static str {
    match pb::SkillState::try_from(state) {
        Ok(pb::SkillState::Pending) => "pending",
        Ok(pb::SkillState::Approved) => "approved",
        Ok(pb::SkillState::Rejected) => "rejected",
        Ok(pb::SkillState::Revoked) => "revoked",
        _ => "unknown",
    }
}

fn print_version(v: &pb::SkillVersion) {
    let installed = if v.installed_at_ms > 0 {
        ", installed"
    } else {
        ""
    };
    let approvals: Vec<&str> = v.approvals.iter().map(|a| a.approver.as_str()).collect();
    println!(
        "{} {:<24} {:<8} {:<9} by {}{}{}",
        &v.tree_hash[..v.tree_hash.len().min(12)],
        v.name,
        level_name(v.level),
        state_name(v.state),
        v.submitted_by,
        if approvals.is_empty() {
            String::new()
        } else {
            format!(", approved by {}", approvals.join(" + "))
        },
        installed
    );
}

fn print_signal(s: &pb::RiskSignal) {
    let place = if s.line > 0 {
        format!("{}:{}", s.file, s.line)
    } else {
        s.file.clone()
    };
    println!(
        "  [{}] {} {} — {}",
        level_name(s.level),
        s.rule,
        place,
        s.reason
    );
    if !s.excerpt.is_empty() {
        println!("      {}", s.excerpt);
    }
}

/// Lists versions (of `name`, in `state`).
pub async fn list(
    client: &OcccClient,
    name: Option<String>,
    state: Option<pb::SkillState>,
    as_json: bool,
) -> Result<bool, ClientError> {
    let request = pb::ListSkillsRequest {
        name: name.unwrap_or_default(),
        state: state.map_or(0, |s| s as i32),
    };
    let list = client.skills().list_skills(request).await?.into_inner();
    if as_json {
        print_json(&list)?;
    } else if list.skills.is_empty() {
        println!("no skills");
    } else {
        list.skills.iter().for_each(print_version);
    }
    Ok(true)
}

/// Shows one version: files and every signal.
pub async fn show(
    client: &OcccClient,
    tree_hash: String,
    as_json: bool,
) -> Result<bool, ClientError> {
    let detail = client
        .skills()
        .get_skill(pb::SkillRef { tree_hash })
        .await?
        .into_inner();
    let version = detail.skill.clone().unwrap_or_default();
    if as_json {
        print_json(&detail)?;
        return Ok(true);
    }
    print_version(&version);
    println!(
        "tree hash {}\nClawHub fingerprint {}",
        version.tree_hash, version.clawhub_fingerprint
    );
    println!("{}", version.description);
    println!(
        "files ({}, {} bytes):",
        version.file_count, version.total_bytes
    );
    for file in &detail.files {
        println!("  {:o} {:>9} {}", file.mode, file.size, file.path);
    }
    println!("signals ({}):", detail.signals.len());
    detail.signals.iter().for_each(print_signal);
    Ok(true)
}

/// The bytes and format of `path`: a `.tar` or `.zip` file as is; a folder
/// packed into a tar here (links are sent as links, which occcd refuses).
fn archive_of(path: &Path) -> Result<(pb::ArchiveFormat, Vec<u8>), ClientError> {
    let bad = |err: std::io::Error| ClientError::Input(format!("{}: {err}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(bad)?;
    if meta.is_dir() {
        let prefix = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("skill")
            .to_owned();
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(&prefix, path).map_err(bad)?;
        return Ok((pb::ArchiveFormat::Tar, builder.into_inner().map_err(bad)?));
    }
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("tar") => pb::ArchiveFormat::Tar,
        Some("zip") => pb::ArchiveFormat::Zip,
        _ => {
            return Err(ClientError::Input(format!(
                "{}: give a skill folder, a .tar or a .zip",
                path.display()
            )));
        }
    };
    Ok((format, std::fs::read(path).map_err(bad)?))
}

/// Submits `path` (folder, .tar, .zip), or with `on_host` the folder at
/// that path on the daemon's host.
pub async fn submit(
    client: &OcccClient,
    path: &Path,
    on_host: bool,
    as_json: bool,
) -> Result<bool, ClientError> {
    let version = if on_host {
        let request = pb::SubmitSkillFolderRequest {
            path: path.display().to_string(),
        };
        client
            .skills()
            .submit_skill_folder(request)
            .await?
            .into_inner()
    } else {
        let (format, bytes) = archive_of(path)?;
        let mut chunks: Vec<pb::SkillArchiveChunk> = bytes
            .chunks(CHUNK_BYTES)
            .map(|data| pb::SkillArchiveChunk {
                format: 0,
                data: data.to_vec(),
            })
            .collect();
        if let Some(first) = chunks.first_mut() {
            first.format = format as i32;
        }
        client
            .skills()
            .submit_skill(tokio_stream::iter(chunks))
            .await?
            .into_inner()
    };
    if as_json {
        print_json(&version)?;
    } else {
        print_version(&version);
        println!(
            "tree hash {} — `occcctl skills show {}` for its signals",
            version.tree_hash, version.tree_hash
        );
    }
    Ok(true)
}

/// What to decide.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// Approve (installs once approved).
    Approve,
    /// Reject a pending version.
    Reject,
    /// Revoke an approved version (un-installs).
    Revoke,
}

/// Decides `tree_hash` with `note` (needs `occcctl elevate` first).
pub async fn decide(
    client: &OcccClient,
    decision: Decision,
    tree_hash: String,
    note: String,
    as_json: bool,
) -> Result<bool, ClientError> {
    let request = pb::SkillDecision { tree_hash, note };
    let mut skills = client.skills();
    let version = match decision {
        Decision::Approve => skills.approve_skill(request).await,
        Decision::Reject => skills.reject_skill(request).await,
        Decision::Revoke => skills.revoke_skill(request).await,
    };
    let version = version.map_err(|status| {
        let denial = status
            .metadata()
            .get("occc-denial")
            .and_then(|v| v.to_str().ok());
        if denial == Some("elevation-required") {
            ClientError::Input(
                "this needs a fresh re-authentication: run `occcctl elevate`, then retry"
                    .to_owned(),
            )
        } else {
            ClientError::Rpc(status)
        }
    })?;
    let version = version.into_inner();
    if as_json {
        print_json(&version)?;
    } else {
        print_version(&version);
    }
    Ok(true)
}

/// Shows what changed from `from` to `to`.
pub async fn diff(
    client: &OcccClient,
    from: String,
    to: String,
    as_json: bool,
) -> Result<bool, ClientError> {
    let diff = client
        .skills()
        .diff_skill(pb::DiffSkillRequest {
            from_tree_hash: from,
            to_tree_hash: to,
        })
        .await?
        .into_inner();
    if as_json {
        print_json(&diff)?;
        return Ok(true);
    }
    println!(
        "risk: {} → {}",
        level_name(diff.from_level),
        level_name(diff.to_level)
    );
    diff.added.iter().for_each(|p| println!("+ {p}"));
    diff.removed.iter().for_each(|p| println!("- {p}"));
    diff.changed.iter().for_each(|p| println!("~ {p}"));
    if !diff.new_signals.is_empty() {
        println!("new signals:");
        diff.new_signals.iter().for_each(print_signal);
    }
    if !diff.gone_signals.is_empty() {
        println!("gone signals:");
        diff.gone_signals.iter().for_each(print_signal);
    }
    Ok(true)
}

/// Runs `occcctl skills …`.
pub async fn run(
    session: &OcccClient,
    action: &SkillsCommand,
    json: bool,
) -> Result<bool, ClientError> {
    match action {
        SkillsCommand::List { name, state } => {
            let state = match state.as_deref() {
                None => None,
                Some(name) => Some(
                    pb::SkillState::from_str_name(&format!("SKILL_STATE_{}", name.to_uppercase()))
                        .ok_or_else(|| {
                            ClientError::Input(format!(
                                "--state {name}: one of pending, approved, rejected, revoked"
                            ))
                        })?,
                ),
            };
            list(session, name.clone(), state, json).await
        }
        SkillsCommand::Show { tree_hash } => show(session, tree_hash.clone(), json).await,
        SkillsCommand::Submit { path, on_host } => submit(session, path, *on_host, json).await,
        SkillsCommand::Approve { tree_hash, note } => {
            decide(
                session,
                Decision::Approve,
                tree_hash.clone(),
                note.clone(),
                json,
            )
            .await
        }
        SkillsCommand::Reject { tree_hash, note } => {
            decide(
                session,
                Decision::Reject,
                tree_hash.clone(),
                note.clone(),
                json,
            )
            .await
        }
        SkillsCommand::Revoke { tree_hash, note } => {
            decide(
                session,
                Decision::Revoke,
                tree_hash.clone(),
                note.clone(),
                json,
            )
            .await
        }
        SkillsCommand::Diff { from, to } => diff(session, from.clone(), to.clone(), json).await,
    }
}
