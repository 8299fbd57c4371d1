//! The config flows: read, check, edit, restore — each write audited.
//!
//! Invariant: a write happens under its container's lock (which the
//! integrity monitor's config check takes too) and only once, with that
//! turn, the caller's session is re-asked (live, elevated, still of the
//! role needed) and no container is quarantined; only when the file is
//! still the version the writer read (re-checked as it is swapped in); only
//! after the text parsed and met the schema; and only by a super-admin when
//! the policy diff loosens a setting — against the file on disk *and*
//! against the last version accepted, so an outside edit that weakened the
//! policy cannot be accepted by an admin. The version row is committed
//! before the lock is released, so occcd's own writes move the monitor's
//! baseline and never look foreign to it; a text found changed outside
//! occcd is stored as a version before it is replaced. Parsing, diffing and
//! sealing (up to 1 MiB texts) run off the async threads, two at a time.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    config::ConfigTarget,
    document,
    error::ConfigError,
    file::{ConfigFile, FileChanges},
    history::{AcceptedText, ConfigHistory},
    schema,
    targets::{ConfigTargets, blocking, open_disk, read_disk},
    versions::{self, NewVersion, Origin, Versioner},
    view::{ConfigActor, Reader},
    write_plan::{self, Accepted, PlanInput, WritePlan, WriteRequest},
};
use crate::{
    audit::{Actor, AuditEvent, AuditLog, ConfigAction},
    auth::role::Role,
    clock::Clock,
    crypto::Sealer,
    integrity::QuarantineLock,
    store::{ConfigVersionRow, ReadCopy, Store},
};

/// Texts parsed, diffed or sealed at once.
const CONCURRENT_WORK: usize = 2;

/// What the editor is built from.
#[derive(Debug)]
pub struct EditorParts {
    /// The store versions live in.
    pub store: Store,
    /// The audit log.
    pub audit: AuditLog,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Seals stored texts.
    pub sealer: Arc<Sealer>,
    /// Names versions.
    pub versioner: Arc<Versioner>,
    /// Every container's config file.
    pub targets: Vec<ConfigTarget>,
    /// Versions kept per container.
    pub versions_kept: u32,
    /// Set while a container is quarantined.
    pub quarantine: QuarantineLock,
}

/// The config editor.
#[derive(Debug)]
pub struct ConfigEditor {
    store: Store,
    /// The last redacted view answered, while the store and the file hold.
    last_view: ReadCopy<reading::KeptView>,
    /// Whether the files changed since they were read.
    changes: Arc<FileChanges>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    sealer: Arc<Sealer>,
    versioner: Arc<Versioner>,
    targets: Arc<ConfigTargets>,
    history: ConfigHistory,
    versions_kept: u32,
    quarantine: QuarantineLock,
    work: Arc<Semaphore>,
}

impl ConfigEditor {
    /// The editor of `parts.targets`' files.
    #[must_use]
    pub fn new(parts: EditorParts) -> Self {
        let targets = Arc::new(ConfigTargets::new(parts.targets));
        Self {
            history: ConfigHistory::new(
                parts.store.clone(),
                Arc::clone(&parts.sealer),
                Arc::clone(&targets),
            ),
            store: parts.store,
            audit: parts.audit,
            clock: parts.clock,
            sealer: parts.sealer,
            versioner: parts.versioner,
            targets,
            versions_kept: parts.versions_kept,
            quarantine: parts.quarantine,
            work: Arc::new(Semaphore::new(CONCURRENT_WORK)),
            last_view: ReadCopy::default(),
            changes: Arc::new(FileChanges::new()),
        }
    }

    /// The config files and their locks.
    #[must_use]
    pub fn targets(&self) -> &ConfigTargets {
        &self.targets
    }

    /// The stored versions.
    #[must_use]
    pub fn history(&self) -> &ConfigHistory {
        &self.history
    }

    /// Names versions.
    #[must_use]
    pub fn versioner(&self) -> &Versioner {
        &self.versioner
    }

    /// How `session` reads now: secrets shown to admins and up inside
    /// their elevation window.
    #[must_use]
    pub fn reader(&self, session: &crate::auth::sessions::Session) -> Reader {
        let elevated = session.elevation_at(self.clock.now()).is_some();
        Reader::new(session.role, elevated)
    }

    /// Runs CPU work (parsing, diffing, sealing) off the async threads,
    /// [`CONCURRENT_WORK`] at a time.
    async fn compute<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ConfigError> + Send + 'static,
    ) -> Result<T, ConfigError> {
        let _turn = Arc::clone(&self.work)
            .acquire_owned()
            .await
            .map_err(|_| ConfigError::Internal("the editor is stopping".to_owned()))?;
        blocking(work).await
    }

    /// At start: removes what a killed write left beside each file, and
    /// stores each file found as version 1 of a container with none.
    pub async fn import_at_start(&self) -> Result<(), ConfigError> {
        for target in self.targets.all() {
            let lock = self.targets.lock_of(target);
            let _writing = lock.lock().await;
            let path = target.path.clone();
            let stale = blocking(move || {
                ConfigFile::open(&path)
                    .and_then(|file| file.remove_stale_temporaries())
                    .map_err(ConfigError::file)
            })
            .await;
            if let Ok(count @ 1..) = stale {
                tracing::warn!(container = %target.container, count, "removed temporary files a stopped write left beside the OpenClaw config");
            }
            if self.history.accepted(target).await?.is_some() {
                continue;
            }
            let Ok(Some(bytes)) = read_disk(target).await else {
                continue;
            };
            let (sealer, versioner) = (Arc::clone(&self.sealer), Arc::clone(&self.versioner));
            let (container, at) = (target.container.clone(), self.clock.now().0);
            let row = self
                .compute(move || {
                    versions::seal(
                        &sealer,
                        &versioner,
                        &NewVersion {
                            container: &container,
                            number: 1,
                            text: &bytes,
                            previous: None,
                            origin: Origin::Imported,
                            author: "occcd",
                            at,
                            note: "the file found when occcd first watched it",
                            restored_from: None,
                        },
                    )
                })
                .await?;
            self.store
                .add_config_versions(&[row], self.versions_kept)
                .await?;
            self.record(Actor::daemon(), ConfigAction::Imported, target, 1, None)
                .await;
        }
        Ok(())
    }

    async fn record(
        &self,
        actor: Actor,
        action: ConfigAction,
        target: &ConfigTarget,
        number: i64,
        detail: Option<String>,
    ) {
        let event = AuditEvent::Config {
            action,
            container: target.container.clone(),
            number,
            detail,
        };
        self.audit.record_or_log(actor, event).await;
    }

    /// Audits a write that did not happen, and why.
    async fn write_failed(&self, by: &ConfigActor<'_>, target: &ConfigTarget, detail: String) {
        let actor = by.audit_actor();
        self.record(actor, ConfigAction::WriteFailed, target, 0, Some(detail))
            .await;
    }

    /// Writes `text` over version `expected` (empty: no file yet).
    pub async fn update(
        &self,
        by: ConfigActor<'_>,
        container: &str,
        expected: &str,
        text: String,
        note: &str,
    ) -> Result<Accepted, ConfigError> {
        let note = checked_note(note)?.to_owned();
        let target = self.targets.target(container)?;
        // Checked before the turn: the expensive refusal needs no lock.
        let text = self
            .compute(move || checked(&text).map(|_| text.into_bytes()))
            .await?;
        let request = WriteRequest {
            expected: expected.to_owned(),
            text,
            note,
            restored_from: None,
            needs: Role::Admin,
        };
        self.write(by, target, request).await
    }

    /// Writes stored version `number` back over version `expected`.
    pub async fn restore(
        &self,
        by: ConfigActor<'_>,
        container: &str,
        number: i64,
        expected: &str,
        note: &str,
    ) -> Result<Accepted, ConfigError> {
        let note = checked_note(note)?.to_owned();
        let target = self.targets.target(container)?;
        let row = self.history.stored(target, number).await?;
        // A stored text is restored as it was, even one that no longer
        // meets the schema: a super-admin is going back to what ran.
        let text = versions::open(&self.sealer, &row)?;
        let request = WriteRequest {
            expected: expected.to_owned(),
            text,
            note,
            restored_from: Some(number),
            needs: Role::SuperAdmin,
        };
        self.write(by, target, request).await
    }

    /// The caller as they are now that the write has its turn: live,
    /// elevated, of the role needed, and no container quarantined.
    fn still_allowed(&self, by: &ConfigActor<'_>, needs: Role) -> Result<Role, ConfigError> {
        let now = self.clock.now();
        write_plan::still_allowed(
            by.session.session_now(),
            now,
            needs,
            self.quarantine.is_locked(),
        )
    }

    async fn write(
        &self,
        by: ConfigActor<'_>,
        target: &ConfigTarget,
        request: WriteRequest,
    ) -> Result<Accepted, ConfigError> {
        let lock = self.targets.lock_of(target);
        let _writing = lock.lock().await;
        let role = self.still_allowed(&by, request.needs)?;
        if self.store.writes_refused().is_some() {
            // The version must be stored before OpenClaw's file changes.
            return Err(ConfigError::Store(crate::store::StoreError::WritesRefused));
        }
        let (file, disk) = open_disk(target).await?;
        let current = self.versioner.of_disk(disk.as_deref());
        if request.expected != current {
            return Err(ConfigError::VersionMismatch {
                expected: request.expected,
                current,
            });
        }
        write_plan::refuse_redacted_copy(&request.text, disk.as_deref())?;
        let accepted = self.history.accepted(target).await?;
        if disk.as_deref() == Some(request.text.as_slice())
            && accepted.as_ref().is_some_and(|a| a.row.version == current)
        {
            return Ok(Accepted {
                stored: accepted.map(|a| versions::summary(a.row)),
                version: current,
                changes: Vec::new(),
            });
        }
        let (plan, request) = self
            .plan(target, by.username, disk.clone(), accepted, request)
            .await?;
        if !plan.loosened.is_empty() && role != Role::SuperAdmin {
            return Err(ConfigError::NeedsSuperAdmin(plan.loosened.join(", ")));
        }
        if disk.as_deref() != Some(request.text.as_slice()) {
            // Planning took time: a quarantine may have begun meanwhile.
            self.still_allowed(&by, request.needs)?;
            let (text, expected) = (request.text.clone(), disk.clone());
            let replaced = blocking(move || {
                let fresh = file.fresh_ownership().map_err(ConfigError::file)?;
                file.replace_if(&text, fresh, expected.as_deref())
                    .map_err(ConfigError::file)
            })
            .await;
            match replaced {
                Ok(true) => {}
                Ok(false) => {
                    let now = read_disk(target).await.ok().flatten();
                    return Err(ConfigError::VersionMismatch {
                        expected: request.expected,
                        current: self.versioner.of_disk(now.as_deref()),
                    });
                }
                Err(err) => {
                    self.write_failed(&by, target, err.to_string()).await;
                    return Err(err);
                }
            }
        }
        if let Err(err) = self
            .store
            .add_config_versions(&plan.rows, self.versions_kept)
            .await
        {
            self.put_back(target, disk, &request.text).await;
            let detail = format!("the version was not stored, the old file was put back: {err}");
            self.write_failed(&by, target, detail).await;
            return Err(err.into());
        }
        self.audit_rows(&by, target, &plan.rows, &request.note)
            .await;
        Ok(Accepted {
            stored: plan.rows.last().cloned().map(versions::summary),
            version: self.versioner.of(&request.text),
            changes: plan.changes,
        })
    }

    /// Judges and seals a write off the async threads.
    async fn plan(
        &self,
        target: &ConfigTarget,
        author: &str,
        disk: Option<Vec<u8>>,
        accepted: Option<AcceptedText>,
        request: WriteRequest,
    ) -> Result<(WritePlan, WriteRequest), ConfigError> {
        let input = PlanInput {
            sealer: Arc::clone(&self.sealer),
            versioner: Arc::clone(&self.versioner),
            container: target.container.clone(),
            author: author.to_owned(),
            at: self.clock.now().0,
            disk,
            accepted,
        };
        self.compute(move || {
            let plan =
                write_plan::plan(&input, &request.text, &request.note, request.restored_from)?;
            Ok((plan, request))
        })
        .await
    }

    /// After a failed store: the file as it was (unless it changed again).
    async fn put_back(&self, target: &ConfigTarget, disk: Option<Vec<u8>>, written: &[u8]) {
        let (path, written) = (target.path.clone(), written.to_vec());
        let restored = blocking(move || {
            let file = ConfigFile::open(&path).map_err(ConfigError::file)?;
            match disk {
                Some(bytes) => {
                    let fresh = file.fresh_ownership().map_err(ConfigError::file)?;
                    file.replace_if(&bytes, fresh, Some(&written))
                        .map(|_| ())
                        .map_err(ConfigError::file)
                }
                // Only what this write put there.
                None => match file.read(written.len()).map_err(ConfigError::file)? {
                    Some(now) if now == written => file.remove().map_err(ConfigError::file),
                    _ => Ok(()),
                },
            }
        })
        .await;
        if let Err(err) = restored {
            tracing::error!(container = %target.container, error = %err, "the old OpenClaw config could not be put back after a failed store; the monitor will report the file");
        }
    }

    async fn audit_rows(
        &self,
        by: &ConfigActor<'_>,
        target: &ConfigTarget,
        rows: &[ConfigVersionRow],
        note: &str,
    ) {
        for row in rows {
            let (action, detail) = write_plan::audit_detail(row, note);
            self.record(by.audit_actor(), action, target, row.number, Some(detail))
                .await;
        }
    }
}

/// `text` parsed and checked against the schema.
fn checked(text: &str) -> Result<serde_json::Value, ConfigError> {
    let parsed = document::parse(text)?;
    let errors = schema::check(&parsed.value);
    if !errors.is_empty() {
        return Err(ConfigError::Schema(errors));
    }
    Ok(parsed.value)
}

fn checked_note(note: &str) -> Result<&str, ConfigError> {
    crate::audit::note::checked_note(note, "say why the config changes")
        .map_err(|reason| ConfigError::input("note", reason))
}

#[path = "editor_reading.rs"]
mod reading;

#[cfg(test)]
#[path = "editor_tests.rs"]
mod tests;
