//! Who acts on the config, who reads it, and what a reader is shown.
//!
//! Invariant: a text leaves the domain redacted unless its reader may see
//! secrets (admin and up, inside an elevation window); the version is
//! always of the exact bytes on disk, redacted or not (keyed, so it does
//! not let anyone test guesses of what redaction took out).

use super::{
    config::ConfigTarget,
    document::{self, ConfigParseError},
    policy::PolicyChange,
    redact,
    schema::{self, SchemaError},
    versions::Versioner,
};
use crate::{
    audit::Actor,
    auth::{role::Role, sessions::Session},
    store::ConfigVersionRow,
    transport::PeerCredentials,
};

/// The writer's session as it is now (ended, demoted, elevation lapsed),
/// asked again once a write has its turn.
pub trait SessionNow: Send + Sync {
    /// The session now, or `None` once it ended.
    fn session_now(&self) -> Option<Session>;
}

/// Who writes.
#[derive(Clone, Copy)]
pub struct ConfigActor<'a> {
    /// occcd username.
    pub username: &'a str,
    /// Their role when the call was admitted.
    pub role: Role,
    /// The socket peer.
    pub peer: PeerCredentials,
    /// Their session, asked again when the write has its turn.
    pub session: &'a dyn SessionNow,
}

impl std::fmt::Debug for ConfigActor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigActor")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl ConfigActor<'_> {
    /// As the audit log records them.
    #[must_use]
    pub fn audit_actor(&self) -> Actor {
        Actor::user(Some(self.peer), self.username)
    }
}

/// Who reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    /// Admin and up, elevated: secrets are shown.
    pub may_see_secrets: bool,
}

impl Reader {
    /// A reader of `role`, elevated or not.
    #[must_use]
    pub fn new(role: Role, elevated: bool) -> Self {
        Self {
            may_see_secrets: elevated && role >= Role::Admin,
        }
    }

    /// `text` as this reader sees it.
    #[must_use]
    pub fn shown(self, text: &str) -> String {
        if self.may_see_secrets {
            text.to_owned()
        } else {
            redact::redact_text(text)
        }
    }
}

/// The config file as one reader sees it.
#[derive(Debug, Clone)]
pub struct ConfigView {
    /// The watched container.
    pub container: String,
    /// Where the file is.
    pub path: String,
    /// False when there is no file.
    pub exists: bool,
    /// The text (redacted unless `redacted` is false).
    pub text: String,
    /// Whether secrets were taken out.
    pub redacted: bool,
    /// The version of the bytes on disk (keyed hash; empty: no file).
    pub version: String,
    /// Why it does not parse, if it does not.
    pub parse_error: Option<ConfigParseError>,
    /// Where it breaks the schema.
    pub schema_errors: Vec<SchemaError>,
    /// The newest stored version (0: none).
    pub latest_number: i64,
    /// True when the file is the newest stored version.
    pub accepted: bool,
}

impl ConfigView {
    /// `disk` (the file's bytes) as `reader` sees it.
    #[must_use]
    pub fn of(
        target: &ConfigTarget,
        disk: Option<&[u8]>,
        latest: Option<&ConfigVersionRow>,
        versioner: &Versioner,
        reader: Reader,
    ) -> Self {
        let version = versioner.of_disk(disk);
        let text = disk
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let (parse_error, schema_errors) = match disk.map(|_| document::parse(&text)) {
            Some(Ok(parsed)) => (None, schema::check(&parsed.value)),
            Some(Err(err)) => (Some(err), Vec::new()),
            None => (None, Vec::new()),
        };
        Self {
            container: target.container.clone(),
            path: target.path.display().to_string(),
            exists: disk.is_some(),
            redacted: !reader.may_see_secrets,
            text: reader.shown(&text),
            accepted: latest.is_some_and(|row| row.version == version),
            latest_number: latest.map_or(0, |row| row.number),
            version,
            parse_error,
            schema_errors,
        }
    }
}

/// What an edit would do.
#[derive(Debug, Clone)]
pub struct EditPreview {
    /// The edited text's version.
    pub version: String,
    /// The file's version now (what to pass as `expected_version`).
    pub current_version: String,
    /// Security-relevant changes.
    pub changes: Vec<PolicyChange>,
    /// True when a super-admin must make it.
    pub needs_super_admin: bool,
    /// The unified diff from the file to the edit (redacted unless the
    /// reader may see secrets).
    pub diff: String,
}
