//! Stored config versions: sealing a text into its row, opening it again,
//! and what a listing shows of a version.
//!
//! Invariant: a text is sealed bound to (container, number), so a sealed
//! text moved to another row does not open; a version's summary (lines
//! changed, policy changes) is computed against the version stored before
//! it, once, when it is stored.

use serde_json::Value;

use super::{
    diff::{self, LineCounts},
    document,
    error::ConfigError,
    policy::{self, PolicyChange},
};
use crate::{
    crypto::{SealContext, Sealer},
    store::ConfigVersionRow,
};

const TABLE: &str = "openclaw_config_versions";

/// Names a text's version: hex HMAC-SHA256 of its bytes under a key derived
/// from the master key — any edit, even of a comment, changes it, and
/// unlike a plain hash it cannot be used to test guesses of a secret that
/// redaction took out of the text.
pub struct Versioner {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for Versioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Versioner(<key redacted>)")
    }
}

impl Versioner {
    /// A versioner keyed with `subkey` ([`crate::crypto::KeyPurpose::ConfigVersions`]).
    #[must_use]
    pub fn new(subkey: &crate::crypto::Subkey) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, subkey.expose()),
        }
    }

    /// The version of `bytes`.
    #[must_use]
    pub fn of(&self, bytes: &[u8]) -> String {
        hex::encode(crate::crypto::hmac_sign_wiped(&self.key, bytes))
    }

    /// The version of what is on disk (empty: no file).
    #[must_use]
    pub fn of_disk(&self, disk: Option<&[u8]>) -> String {
        disk.map(|bytes| self.of(bytes)).unwrap_or_default()
    }
}
const COLUMN: &str = "text_sealed";

/// Where a stored version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file found at first start.
    Imported,
    /// An edit through occcd.
    Edited,
    /// A restore of an older version.
    Restored,
    /// A text changed outside occcd, kept before it was replaced.
    Found,
}

impl Origin {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Edited => "edited",
            Self::Restored => "restored",
            Self::Found => "found",
        }
    }
}

/// A stored version as listings show it (no text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The watched container.
    pub container: String,
    /// 1, 2, … per container.
    pub number: i64,
    /// The text's version (keyed hash, see [`Versioner`]).
    pub version: String,
    /// Bytes.
    pub size: i64,
    /// `imported`, `edited`, `restored` or `found`.
    pub origin: String,
    /// Who wrote it.
    pub author: String,
    /// When it was stored (Unix ms).
    pub created_at: i64,
    /// Why.
    pub note: String,
    /// Lines changed against the version before it.
    pub lines: LineCounts,
    /// Security-relevant changes against the version before it.
    pub changes: Vec<PolicyChange>,
    /// The version a restore brought back.
    pub restored_from: Option<i64>,
}

/// What a new version is.
#[derive(Debug)]
pub struct NewVersion<'a> {
    /// The watched container.
    pub container: &'a str,
    /// Its number (the latest + 1).
    pub number: i64,
    /// The text's bytes.
    pub text: &'a [u8],
    /// The text stored before it, if any.
    pub previous: Option<&'a [u8]>,
    /// Where it came from.
    pub origin: Origin,
    /// Who wrote it.
    pub author: &'a str,
    /// When.
    pub at: i64,
    /// Why.
    pub note: &'a str,
    /// For a restore: the number brought back.
    pub restored_from: Option<i64>,
}

fn context<'a>(row: &'a str) -> SealContext<'a> {
    SealContext {
        table: TABLE,
        column: COLUMN,
        row,
    }
}

fn row_name(container: &str, number: i64) -> String {
    format!("{container}/{number}")
}

/// What `text` parses to, or an empty object (OpenClaw's defaults) when it
/// does not parse (or is not UTF-8).
#[must_use]
pub fn value_or_defaults(text: &[u8]) -> Value {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| document::parse(text).ok())
        .map_or_else(|| Value::Object(serde_json::Map::new()), |doc| doc.value)
}

/// `bytes` as text for people (a byte that is not UTF-8 shows as U+FFFD).
#[must_use]
pub fn shown_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The row of `new`, its text sealed.
pub fn seal(
    sealer: &Sealer,
    versioner: &Versioner,
    new: &NewVersion<'_>,
) -> Result<ConfigVersionRow, ConfigError> {
    let previous = new.previous.unwrap_or(b"");
    let changes = policy::policy_diff(&value_or_defaults(previous), &value_or_defaults(new.text));
    let lines = diff::line_counts(&shown_text(previous), &shown_text(new.text));
    let sealed = sealer.seal(&context(&row_name(new.container, new.number)), new.text)?;
    Ok(ConfigVersionRow {
        container: new.container.to_owned(),
        number: new.number,
        version: versioner.of(new.text),
        text_sealed: sealed,
        size: i64::try_from(new.text.len()).unwrap_or(i64::MAX),
        origin: new.origin.as_str().to_owned(),
        author: new.author.to_owned(),
        created_at: new.at,
        note: new.note.to_owned(),
        lines_added: i64::from(lines.added),
        lines_removed: i64::from(lines.removed),
        policy: serde_json::to_string(&changes).unwrap_or_else(|_| "[]".to_owned()),
        restored_from: new.restored_from,
    })
}

/// The text (bytes) of `row`.
pub fn open(sealer: &Sealer, row: &ConfigVersionRow) -> Result<Vec<u8>, ConfigError> {
    let bytes = sealer.open(
        &context(&row_name(&row.container, row.number)),
        &row.text_sealed,
    )?;
    Ok(bytes.to_vec())
}

/// What a listing shows of `row`.
#[must_use]
pub fn summary(row: ConfigVersionRow) -> VersionSummary {
    VersionSummary {
        changes: serde_json::from_str(&row.policy).unwrap_or_default(),
        lines: LineCounts {
            added: u32::try_from(row.lines_added).unwrap_or(u32::MAX),
            removed: u32::try_from(row.lines_removed).unwrap_or(u32::MAX),
        },
        container: row.container,
        number: row.number,
        version: row.version,
        size: row.size,
        origin: row.origin,
        author: row.author,
        created_at: row.created_at,
        note: row.note,
        restored_from: row.restored_from,
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::crypto::{KeyPurpose, KeyRing};

    fn sealer() -> Sealer {
        let master = KeyRing::from_bytes(Zeroizing::new([7; 32]));
        Sealer::new(&master.derive(KeyPurpose::Sealing)).unwrap()
    }

    fn versioner() -> Versioner {
        let master = KeyRing::from_bytes(Zeroizing::new([7; 32]));
        Versioner::new(&master.derive(KeyPurpose::ConfigVersions))
    }

    fn new_version<'a>(number: i64, text: &'a [u8], previous: Option<&'a [u8]>) -> NewVersion<'a> {
        NewVersion {
            container: "gw",
            number,
            text,
            previous,
            origin: Origin::Edited,
            author: "ada",
            at: 1,
            note: "why",
            restored_from: None,
        }
    }

    #[test]
    fn a_sealed_text_opens_only_in_its_own_row_and_keeps_its_summary() {
        let sealer = sealer();
        let old: &[u8] =
            b"{ gateway: { bind: \"loopback\", auth: { token: \"s3cr3t-v4lue\" } } }\n";
        let new: &[u8] = b"{ gateway: { bind: \"lan\", auth: { token: \"s3cr3t-v4lue\" } } }\n";
        let row = seal(&sealer, &versioner(), &new_version(2, new, Some(old))).unwrap();
        assert!(!row.text_sealed.windows(12).any(|w| w == b"s3cr3t-v4lue"));
        assert_eq!(open(&sealer, &row).unwrap(), new);
        let mut moved = row.clone();
        moved.number = 3;
        assert!(
            open(&sealer, &moved).is_err(),
            "bound to (container, number)"
        );
        let mut other = row.clone();
        other.container = "other".to_owned();
        assert!(open(&sealer, &other).is_err());
        let summary = summary(row);
        assert_eq!((summary.lines.added, summary.lines.removed), (1, 1));
        assert_eq!(summary.changes.len(), 1);
        assert!(summary.changes[0].loosens && summary.changes[0].path == "gateway.bind");
        assert_eq!(summary.version, versioner().of(new));
    }

    #[test]
    fn an_unparseable_text_is_judged_as_openclaws_defaults() {
        assert_eq!(value_or_defaults(b"{ not json5"), serde_json::json!({}));
        assert_eq!(value_or_defaults(b"{ a: \"\xff\" }"), serde_json::json!({}));
        let changes = policy::policy_diff(
            &value_or_defaults(b"{ not json5"),
            &value_or_defaults(b"{ tools: { exec: { security: \"full\" } } }"),
        );
        assert!(policy::loosens(&changes));
    }

    #[test]
    fn versions_are_keyed_and_any_edit_changes_them() {
        let versioner = versioner();
        let text = b"{ a: 1 } // note";
        assert_eq!(versioner.of(text).len(), 64);
        assert_ne!(versioner.of(text), versioner.of(b"{ a: 1 } // Note"));
        assert_ne!(
            versioner.of(text),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, text)),
            "not a plain hash anyone can recompute"
        );
        let other = Versioner::new(
            &KeyRing::from_bytes(Zeroizing::new([8; 32])).derive(KeyPurpose::ConfigVersions),
        );
        assert_ne!(versioner.of(text), other.of(text));
        assert_eq!(versioner.of_disk(None), "");
    }
}
