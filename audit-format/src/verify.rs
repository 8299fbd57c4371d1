//! Checking an export offline, with nothing but the daemon's public key.
//!
//! Invariant: the verifier trusts only what it recomputes or what a signature
//! under the given key covers; the header's key is compared, never used.

use std::io::{BufRead, Read};

use ring::signature::{ED25519, UnparsedPublicKey};

use crate::{
    CheckpointLine, ExportLine, FORMAT, GENESIS_LINK, Link, checkpoint_message, header_message,
    next_link,
};

/// The longest line an export may hold (entries are far smaller).
const MAX_LINE_BYTES: usize = 1 << 20;
/// Bytes read for one line: one more than allowed, to notice a longer one.
const LINE_LIMIT: u64 = (1 << 20) + 1;

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked (the anchor included, unless it is the beginning).
    pub checkpoints: u64,
    /// The first and last entry's sequence (0 and 0 without entries).
    pub first_sequence: u64,
    /// The last entry's sequence.
    pub last_sequence: u64,
    /// When the newest checkpoint was signed.
    pub last_checkpoint_at_unix_ms: i64,
    /// When the export was made (from its signed header).
    pub exported_at_unix_ms: i64,
}

/// Why an export does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The public key is not 32 bytes of hex.
    #[error("the public key must be 64 hex digits (an Ed25519 key): {0}")]
    BadKey(String),
    /// A line is wrong.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The export ends without a checkpoint of its last entry.
    #[error(
        "the export ends after entry {last_sequence} without a checkpoint of it: {unsigned} entries after the last signed checkpoint (entry {last_signed}) are not covered; the file may have been truncated"
    )]
    Truncated {
        /// The last entry.
        last_sequence: u64,
        /// The last entry a checkpoint covers.
        last_signed: u64,
        /// Entries after it.
        unsigned: u64,
    },
    /// The export ends before the last entry its signed header names.
    #[error(
        "the signed header promises entries up to {promised} but the export ends at entry {found}: the newest entries were cut off"
    )]
    Cut {
        /// The last entry the header names.
        promised: u64,
        /// The last entry present.
        found: u64,
    },
    /// The file could not be read.
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses a hex Ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Result<[u8; 32], VerifyError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|err| VerifyError::BadKey(err.to_string()))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| VerifyError::BadKey(format!("{} bytes, not 32", bytes.len())))
}

struct Header {
    exported_at_unix_ms: i64,
    last_sequence: u64,
    signature_hex: String,
}

struct Walk {
    key: [u8; 32],
    link: Link,
    sequence: u64,
    signed_sequence: u64,
    report: ExportReport,
    last_was_checkpoint: bool,
}

/// Verifies the export read from `reader` against `public_key_hex`.
pub fn verify_export(
    mut reader: impl BufRead,
    public_key_hex: &str,
) -> Result<ExportReport, VerifyError> {
    let key = parse_public_key(public_key_hex)?;
    let mut walk: Option<Walk> = None;
    let mut header: Option<Header> = None;
    let mut number = 0;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader
            .by_ref()
            .take(LINE_LIMIT)
            .read_until(b'\n', &mut buffer)?;
        if read == 0 {
            break;
        }
        number += 1;
        let fail = |reason: String| VerifyError::Line {
            line: number,
            reason,
        };
        if buffer.len() > MAX_LINE_BYTES {
            return Err(fail(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: ExportLine = serde_json::from_slice(&buffer)
            .map_err(|err| fail(format!("not an export line: {err}")))?;
        match (line, &mut walk) {
            (
                ExportLine::Header {
                    format,
                    public_key_hex,
                    exported_at_unix_ms,
                    last_sequence,
                    signature_hex,
                },
                None,
            ) if header.is_none() => {
                if format != FORMAT {
                    return Err(fail(format!("format {format:?}, expected {FORMAT:?}")));
                }
                if !public_key_hex.eq_ignore_ascii_case(&hex::encode(key)) {
                    return Err(fail(
                        "exported under a different public key than the one given".into(),
                    ));
                }
                header = Some(Header {
                    exported_at_unix_ms,
                    last_sequence,
                    signature_hex,
                });
            }
            (ExportLine::Anchor(anchor), None) => {
                let Some(header) = &header else {
                    return Err(fail("an anchor before the header".into()));
                };
                let started = start(&key, &anchor).map_err(&fail)?;
                let message = header_message(
                    header.exported_at_unix_ms,
                    anchor.sequence,
                    &started.link,
                    header.last_sequence,
                );
                verify_signature(&key, &message, &header.signature_hex).map_err(|()| {
                    fail("the header does not sign this anchor under this public key: the export's start was changed or it is not occcd's".into())
                })?;
                let mut started = started;
                started.report.exported_at_unix_ms = header.exported_at_unix_ms;
                walk = Some(started);
            }
            (ExportLine::Entry(entry), Some(state)) => {
                if entry.sequence != state.sequence + 1 {
                    return Err(fail(format!(
                        "entry {} follows entry {}: entries are missing or out of order",
                        entry.sequence, state.sequence
                    )));
                }
                state.link = next_link(&state.link, &entry.fields());
                state.sequence = entry.sequence;
                state.report.entries += 1;
                if state.report.first_sequence == 0 {
                    state.report.first_sequence = entry.sequence;
                }
                state.report.last_sequence = entry.sequence;
                state.last_was_checkpoint = false;
            }
            (ExportLine::Checkpoint(checkpoint), Some(state)) => {
                if checkpoint.sequence != state.sequence {
                    return Err(fail(format!(
                        "a checkpoint of entry {} after entry {}",
                        checkpoint.sequence, state.sequence
                    )));
                }
                check_signed(&state.key, &checkpoint, &state.link).map_err(fail)?;
                state.signed_sequence = checkpoint.sequence;
                state.report.checkpoints += 1;
                state.report.last_checkpoint_at_unix_ms = checkpoint.at_unix_ms;
                state.last_was_checkpoint = true;
            }
            (_, _) => {
                return Err(fail(
                    "out of place: an export is a header, an anchor, then entries and checkpoints"
                        .into(),
                ));
            }
        }
    }
    let Some(walk) = walk else {
        return Err(VerifyError::Line {
            line: number,
            reason: "the export ends before its header and anchor".into(),
        });
    };
    if !walk.last_was_checkpoint && walk.report.entries > 0 {
        return Err(VerifyError::Truncated {
            last_sequence: walk.sequence,
            last_signed: walk.signed_sequence,
            unsigned: walk.sequence - walk.signed_sequence,
        });
    }
    let promised = header.map_or(0, |header| header.last_sequence);
    if walk.sequence != promised {
        return Err(VerifyError::Cut {
            promised,
            found: walk.sequence,
        });
    }
    Ok(walk.report)
}

fn start(key: &[u8; 32], anchor: &CheckpointLine) -> Result<Walk, String> {
    let mut report = ExportReport {
        entries: 0,
        checkpoints: 0,
        first_sequence: 0,
        last_sequence: 0,
        last_checkpoint_at_unix_ms: 0,
        exported_at_unix_ms: 0,
    };
    let link = if anchor.sequence == 0 {
        if anchor.link_hex != hex::encode(GENESIS_LINK) || !anchor.signature_hex.is_empty() {
            return Err("an anchor at the beginning has the all-zero link and no signature".into());
        }
        GENESIS_LINK
    } else {
        let link = parse_link(&anchor.link_hex)?;
        check_signed(key, anchor, &link)?;
        report.checkpoints = 1;
        report.last_checkpoint_at_unix_ms = anchor.at_unix_ms;
        link
    };
    Ok(Walk {
        key: *key,
        link,
        sequence: anchor.sequence,
        signed_sequence: anchor.sequence,
        report,
        last_was_checkpoint: true,
    })
}

fn parse_link(link_hex: &str) -> Result<Link, String> {
    hex::decode(link_hex)
        .ok()
        .and_then(|bytes| Link::try_from(bytes).ok())
        .ok_or_else(|| "a link must be 64 hex digits".to_owned())
}

fn check_signed(key: &[u8; 32], checkpoint: &CheckpointLine, link: &Link) -> Result<(), String> {
    if parse_link(&checkpoint.link_hex)? != *link {
        return Err(format!(
            "the entries up to {} do not match the signed checkpoint: an entry was changed, added or removed",
            checkpoint.sequence
        ));
    }
    let message = checkpoint_message(checkpoint.sequence, checkpoint.at_unix_ms, link);
    verify_signature(key, &message, &checkpoint.signature_hex).map_err(|()| {
        format!(
            "the checkpoint of entry {} is not signed by this public key",
            checkpoint.sequence
        )
    })
}

fn verify_signature(key: &[u8; 32], message: &[u8], signature_hex: &str) -> Result<(), ()> {
    let signature = hex::decode(signature_hex).map_err(|_| ())?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &signature)
        .map_err(|_| ())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
