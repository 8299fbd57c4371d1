//! The skill flows: submit (archive or host folder), list, show, approve,
//! reject, revoke, diff — each audited.
//!
//! Invariant: a submission is unpacked, hashed and assessed in memory,
//! bounded, one at a time, before anything is stored; the content copy is
//! written before the row that names it; a decision is applied only from
//! the state it was checked against (conditional writes), and installing or
//! removing files happens under the install lock the integrity monitor's
//! skills check also takes, with the store updated before the lock is
//! released — so occcd's own installs never look foreign to the monitor.

use std::{path::PathBuf, sync::Arc};

use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use super::{
    approval::{self, ApprovalOutcome, Decider, SkillState},
    assess::Assessor,
    config::SkillsConfig,
    content::ContentStore,
    error::SkillError,
    frontmatter, host_folder,
    input::{MAX_NOTE_CHARS, SkillActor, checked_hash, checked_note},
    install::InstallTarget,
    placement::Placement,
    read_model::SkillReadModel,
    tree::{SkillTree, clawhub_fingerprint_of, tree_hash_of},
    unpack::{self, ArchiveFormat},
    view::{self, SkillDetail, SkillDiff, SkillSummary},
};
use crate::{
    audit::{Actor, AuditEvent, AuditLog, SkillAction},
    clock::Clock,
    store::{SkillDecisionRow, SkillRow, Store},
};

/// Most versions ListSkills returns.
pub const MAX_LISTED: u32 = 500;

/// Skill governance.
#[derive(Debug)]
pub struct SkillGovernance {
    store: Store,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    /// The compiled rules, built at the first submission (they cost memory
    /// a daemon that never sees a submission need not carry).
    assessor: std::sync::Mutex<Option<Arc<Assessor>>>,
    content: ContentStore,
    placement: Placement,
    config: SkillsConfig,
    /// One submission is unpacked and assessed at a time.
    intake: Semaphore,
    /// Held while files in a skills folder change or are checked.
    install_lock: Arc<AsyncMutex<()>>,
    /// The last list and detail answered, while no skill changed.
    read_model: SkillReadModel,
}

impl SkillGovernance {
    /// Builds the flows; `state_dir` holds occcd's copies of skills.
    pub fn new(
        store: Store,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        config: &SkillsConfig,
        state_dir: PathBuf,
    ) -> Result<Self, SkillError> {
        let (uid, gid) = config.owner().map_err(SkillError::Refused)?;
        let content = ContentStore::open(state_dir.join("skills"))?;
        let target = config
            .install_dir
            .clone()
            .map(|folder| InstallTarget { folder, uid, gid });
        let install_lock = Arc::new(AsyncMutex::new(()));
        if let Some(target) = target.clone() {
            target.clean_up_in_background(&install_lock);
        }
        Ok(Self {
            placement: Placement::new(
                store.clone(),
                Arc::clone(&clock),
                content.clone(),
                target,
                config.limits(),
            ),
            content,
            config: config.clone(),
            store,
            audit,
            clock,
            assessor: std::sync::Mutex::new(None),
            intake: Semaphore::new(1),
            install_lock,
            read_model: SkillReadModel::default(),
        })
    }

    /// The compiled rules (compiled on first use).
    fn assessor(&self) -> Result<Arc<Assessor>, SkillError> {
        let mut slot = self
            .assessor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(assessor) = slot.as_ref() {
            return Ok(Arc::clone(assessor));
        }
        let assessor = Arc::new(
            Assessor::new()
                .map_err(|err| SkillError::Disk(format!("risk rules do not compile: {err}")))?,
        );
        *slot = Some(Arc::clone(&assessor));
        Ok(assessor)
    }

    /// The lock the monitor's skills check takes.
    #[must_use]
    pub fn install_lock(&self) -> Arc<AsyncMutex<()>> {
        Arc::clone(&self.install_lock)
    }

    /// The largest archive accepted (checked while receiving).
    #[must_use]
    pub fn max_archive_bytes(&self) -> u64 {
        self.config.max_archive_bytes
    }

    async fn record(
        &self,
        actor: Actor,
        action: SkillAction,
        row: &SkillRow,
        detail: Option<String>,
    ) {
        let event = AuditEvent::Skill {
            action,
            name: row.name.clone(),
            tree_hash: row.tree_hash.clone(),
            detail,
        };
        self.audit.record_or_log(actor, event).await;
    }

    /// Submits an archive.
    pub async fn submit_archive(
        &self,
        by: SkillActor<'_>,
        format: ArchiveFormat,
        archive: Vec<u8>,
    ) -> Result<SkillSummary, SkillError> {
        let limits = self.config.limits();
        self.submit(by, move || {
            let tree = unpack::unpack(format, &archive, limits)?;
            Ok((tree, Some((format, archive))))
        })
        .await
    }

    /// Submits a folder on the host (below a submission root, readable by
    /// the caller's OS user).
    pub async fn submit_folder(
        &self,
        by: SkillActor<'_>,
        path: &str,
    ) -> Result<SkillSummary, SkillError> {
        let path = host_folder::check_submission_path(path, &self.config.submit_roots)?;
        let (uid, limits) = (by.peer.uid, self.config.limits());
        self.submit(by, move || {
            Ok((host_folder::read_folder(&path, uid, limits)?, None))
        })
        .await
    }

    async fn submit(
        &self,
        by: SkillActor<'_>,
        read: impl FnOnce() -> Result<(SkillTree, Option<(ArchiveFormat, Vec<u8>)>), SkillError>
        + Send
        + 'static,
    ) -> Result<SkillSummary, SkillError> {
        let _turn = self.intake.try_acquire().map_err(|_| {
            SkillError::Busy("another skill is being assessed; retry in a moment".to_owned())
        })?;
        let assessor_rules = self.assessor()?;
        let content = self.content.clone();
        let (tree, manifest, parsed, assessment) = tokio::task::spawn_blocking(move || {
            let (tree, archive) = read()?;
            let skill_md = tree
                .file("SKILL.md")
                .map(|f| f.contents.clone())
                .unwrap_or_default();
            let parsed = frontmatter::parse(&skill_md)?;
            // Hashing and scanning side by side; every file is hashed once
            // and both names come from the manifest.
            let (manifest, assessment) = std::thread::scope(|scope| {
                let hashing = scope.spawn(|| tree.manifest());
                let assessment = assessor_rules.assess(&tree, &parsed);
                hashing.join().map(|manifest| (manifest, assessment))
            })
            .map_err(|_| SkillError::Disk("hashing the skill failed".to_owned()))?;
            let original = archive
                .as_ref()
                .map(|(format, bytes)| (*format, bytes.as_slice()));
            content.keep(&tree, &tree_hash_of(&manifest), original)?;
            Ok::<_, SkillError>((tree, manifest, parsed, assessment))
        })
        .await
        .map_err(|err| SkillError::Disk(format!("assessment task failed: {err}")))??;
        let row = SkillRow {
            tree_hash: tree_hash_of(&manifest),
            name: parsed.name.clone(),
            description: parsed.description.chars().take(MAX_NOTE_CHARS).collect(),
            level: assessment.level.as_str().to_owned(),
            state: SkillState::Pending.as_str().to_owned(),
            submitted_by: by.username.to_owned(),
            submitted_at: self.clock.now().0,
            decided_by: None,
            decided_at: None,
            note: None,
            clawhub_fingerprint: clawhub_fingerprint_of(&manifest),
            file_count: i64::try_from(tree.files().len()).unwrap_or(i64::MAX),
            total_bytes: i64::try_from(tree.total_bytes()).unwrap_or(i64::MAX),
            manifest: serde_json::to_string(&manifest)
                .map_err(|err| SkillError::Disk(err.to_string()))?,
            frontmatter: parsed.json.to_string(),
            signals: serde_json::to_string(&assessment.signals)
                .map_err(|err| SkillError::Disk(err.to_string()))?,
            installed_at: None,
        };
        if self.store.submit_skill(&row).await? {
            let detail = format!(
                "level {}, {} signals",
                assessment.level,
                assessment.signals.len()
            );
            self.record(by.audit_actor(), SkillAction::Submitted, &row, Some(detail))
                .await;
        }
        self.summary(&row.tree_hash).await
    }

    /// Versions, newest first (of one name and/or state).
    pub async fn list(
        &self,
        name: Option<&str>,
        state: Option<SkillState>,
    ) -> Result<Vec<SkillSummary>, SkillError> {
        // Read the version first: a write that ends after it changes it.
        let version = self.store.skills_version();
        if let Some(list) = self.read_model.list(version, name, state) {
            return Ok(list);
        }
        let rows = self
            .store
            .skills(name, state.map(SkillState::as_str), MAX_LISTED)
            .await?;
        // Every listed version's approvals in one query, not one per row.
        let mut approvals = self
            .store
            .approvals_of_listed_skills(name, state.map(SkillState::as_str), MAX_LISTED)
            .await?;
        let list = rows
            .into_iter()
            .map(|row| {
                let of_row = approvals.remove(&row.tree_hash).unwrap_or_default();
                view::summary(row, of_row)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.read_model.put_list(version, name, state, &list);
        Ok(list)
    }

    async fn row(&self, tree_hash: &str) -> Result<SkillRow, SkillError> {
        checked_hash("tree_hash", tree_hash)?;
        self.store
            .skill(tree_hash)
            .await?
            .ok_or_else(|| SkillError::NotFound(tree_hash.to_owned()))
    }

    /// One version's summary.
    pub async fn summary(&self, tree_hash: &str) -> Result<SkillSummary, SkillError> {
        let row = self.row(tree_hash).await?;
        let approvals = self.store.skill_approvals(tree_hash).await?;
        view::summary(row, approvals)
    }

    /// One version in full.
    pub async fn detail(&self, tree_hash: &str) -> Result<SkillDetail, SkillError> {
        let version = self.store.skills_version();
        if let Some(detail) = self.read_model.detail(version, tree_hash) {
            return Ok(detail);
        }
        let summary = self.summary(tree_hash).await?;
        let detail = SkillDetail {
            manifest: view::manifest_of(&summary.row)?,
            signals: view::signals_of(&summary.row)?,
            summary,
        };
        self.read_model.put_detail(version, &detail);
        Ok(detail)
    }

    /// What changed from `from` to `to`.
    pub async fn diff(&self, from: &str, to: &str) -> Result<SkillDiff, SkillError> {
        checked_hash("from_tree_hash", from)?;
        checked_hash("to_tree_hash", to)?;
        view::diff(&self.row(from).await?, &self.row(to).await?)
    }

    /// Approves `tree_hash` (installing it once approved).
    pub async fn approve(
        &self,
        by: SkillActor<'_>,
        tree_hash: &str,
        note: &str,
    ) -> Result<SkillSummary, SkillError> {
        let note = checked_note(note)?;
        // Approvals are decided one at a time, on what is stored now.
        let _installing = self.install_lock.lock().await;
        let summary = self.summary(tree_hash).await?;
        let approved_by: Vec<String> = summary
            .approvals
            .iter()
            .map(|a| a.approver.clone())
            .collect();
        let decider = Decider {
            username: by.username,
            role: by.role,
        };
        let submitters = self.store.skill_submitters(tree_hash).await?;
        let outcome = approval::approve(
            summary.level,
            summary.state,
            &submitters,
            &approved_by,
            decider,
        )?;
        let would_complete = outcome == ApprovalOutcome::Approved;
        let replace = if would_complete {
            self.placement.check_room(&summary.row).await?
        } else {
            false
        };
        let decision = SkillDecisionRow {
            tree_hash,
            from: "pending",
            to: "approved",
            by: by.username,
            at: self.clock.now().0,
            note,
        };
        let needed = approval::approvals_needed(summary.level);
        let level = summary.level.as_str();
        let Some(completes) = self.store.approve_skill(decision, level, needed).await? else {
            return Err(SkillError::Refused(
                "the skill changed meanwhile (decided, resubmitted, or you approved it already); look again"
                    .to_owned(),
            ));
        };
        if completes != would_complete {
            // Cannot happen while every approval holds the install lock;
            // refuse rather than install an unchecked folder.
            return Err(SkillError::Refused(
                "the skill changed meanwhile; look again".to_owned(),
            ));
        }
        let row = &summary.row;
        if !completes {
            self.record(
                by.audit_actor(),
                SkillAction::ApprovalRecorded,
                row,
                Some(format!(
                    "critical: a second super-admin must approve; note: {note}"
                )),
            )
            .await;
            return self.summary(tree_hash).await;
        }
        self.record(
            by.audit_actor(),
            SkillAction::Approved,
            row,
            Some(format!("level {}; note: {note}", summary.level)),
        )
        .await;
        if let Err(err) = self.placement.install(row, replace).await {
            let detail = Some(err.to_string());
            self.record(by.audit_actor(), SkillAction::InstallFailed, row, detail)
                .await;
            return Err(err);
        }
        if self.placement.installs() {
            self.record(by.audit_actor(), SkillAction::Installed, row, None)
                .await;
        }
        self.summary(tree_hash).await
    }

    /// Rejects pending `tree_hash`.
    pub async fn reject(
        &self,
        by: SkillActor<'_>,
        tree_hash: &str,
        note: &str,
    ) -> Result<SkillSummary, SkillError> {
        let note = checked_note(note)?;
        let summary = self.summary(tree_hash).await?;
        approval::reject(summary.state)?;
        self.move_state(
            by,
            &summary,
            SkillState::Rejected,
            SkillAction::Rejected,
            note,
        )
        .await?;
        self.summary(tree_hash).await
    }

    /// Moves `summary`'s version from the state it was read in to `to`,
    /// unless it changed meanwhile, and audits `action` with `note`.
    async fn move_state(
        &self,
        by: SkillActor<'_>,
        summary: &SkillSummary,
        to: SkillState,
        action: SkillAction,
        note: &str,
    ) -> Result<(), SkillError> {
        let decision = SkillDecisionRow {
            tree_hash: &summary.row.tree_hash,
            from: summary.state.as_str(),
            to: to.as_str(),
            by: by.username,
            at: self.clock.now().0,
            note,
        };
        if !self.store.decide_skill(decision).await? {
            return Err(SkillError::Refused(
                "the skill was decided meanwhile; look again".to_owned(),
            ));
        }
        let row = &summary.row;
        self.record(by.audit_actor(), action, row, Some(note.to_owned()))
            .await;
        Ok(())
    }

    /// Revokes approved `tree_hash` and un-installs it.
    pub async fn revoke(
        &self,
        by: SkillActor<'_>,
        tree_hash: &str,
        note: &str,
    ) -> Result<SkillSummary, SkillError> {
        let note = checked_note(note)?;
        let _installing = self.install_lock.lock().await;
        // Read under the lock: an install of another version of this name
        // may have finished meanwhile.
        let summary = self.summary(tree_hash).await?;
        approval::revoke(summary.state)?;
        self.move_state(
            by,
            &summary,
            SkillState::Revoked,
            SkillAction::Revoked,
            note,
        )
        .await?;
        if summary.row.installed_at.is_some() && self.placement.installs() {
            let removed = self.placement.uninstall(&summary.row).await;
            match removed {
                Ok(()) => {
                    self.record(
                        by.audit_actor(),
                        SkillAction::Uninstalled,
                        &summary.row,
                        None,
                    )
                    .await
                }
                Err(err) => {
                    self.record(
                        by.audit_actor(),
                        SkillAction::InstallFailed,
                        &summary.row,
                        Some(err.to_string()),
                    )
                    .await;
                    return Err(err);
                }
            }
        }
        self.summary(tree_hash).await
    }
}
