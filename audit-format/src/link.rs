//! Public links and what a checkpoint signs.
//!
//! Invariant: the encoding is injective — every variable-length field is
//! length-prefixed and every optional one tagged — so two different entries
//! never feed SHA-256 the same bytes.

use ring::digest::{Context, SHA256};

/// A public link: SHA-256, 32 bytes.
pub type Link = [u8; 32];

/// The link before the first entry.
pub const GENESIS_LINK: Link = [0; 32];

/// Prefix of every signed checkpoint message (domain separation).
pub const CHECKPOINT_CONTEXT: &[u8] = b"occcd audit checkpoint v1\0";

/// The fields of an entry the public link covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFields<'a> {
    /// Position in the chain, from 1.
    pub sequence: u64,
    /// When it was recorded.
    pub at_unix_ms: i64,
    /// What happened, e.g. `login_succeeded`.
    pub kind: &'a str,
    /// The occcd user; empty when there was none.
    pub actor: &'a str,
    /// The caller's OS identity, when there was a caller.
    pub actor_uid: Option<u32>,
    /// Its group.
    pub actor_gid: Option<u32>,
    /// Its process.
    pub actor_pid: Option<u32>,
    /// The details exactly as stored (a JSON object).
    pub detail_json: &'a str,
}

/// The public link of `entry`, following `previous`.
#[must_use]
pub fn next_link(previous: &Link, entry: &EntryFields<'_>) -> Link {
    let mut context = Context::new(&SHA256);
    context.update(previous);
    context.update(&entry.sequence.to_be_bytes());
    context.update(&entry.at_unix_ms.to_be_bytes());
    for text in [entry.kind, entry.actor] {
        update_text(&mut context, text);
    }
    for id in [entry.actor_uid, entry.actor_gid, entry.actor_pid] {
        match id {
            Some(value) => {
                context.update(&[1]);
                context.update(&value.to_be_bytes());
            }
            None => context.update(&[0]),
        }
    }
    update_text(&mut context, entry.detail_json);
    let mut link = GENESIS_LINK;
    link.copy_from_slice(context.finish().as_ref());
    link
}

fn update_text(context: &mut Context, text: &str) {
    context.update(&(text.len() as u64).to_be_bytes());
    context.update(text.as_bytes());
}

/// Prefix of a signed export header (domain separation).
pub const HEADER_CONTEXT: &[u8] = b"occcd audit export v1\0";

/// The bytes an export header signs: when it was made, the checkpoint it
/// starts from (its anchor: sequence and link) and the last entry it holds —
/// so entries cut from either end, or a later checkpoint passed off as the
/// anchor, are detected.
#[must_use]
pub fn header_message(
    exported_at_unix_ms: i64,
    anchor_sequence: u64,
    anchor_link: &Link,
    last_sequence: u64,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_CONTEXT.len() + 24 + anchor_link.len());
    message.extend_from_slice(HEADER_CONTEXT);
    message.extend_from_slice(&exported_at_unix_ms.to_be_bytes());
    message.extend_from_slice(&anchor_sequence.to_be_bytes());
    message.extend_from_slice(anchor_link);
    message.extend_from_slice(&last_sequence.to_be_bytes());
    message
}

/// The bytes a checkpoint of `sequence`, signed at `at_unix_ms`, with
/// public link `link` signs.
#[must_use]
pub fn checkpoint_message(sequence: u64, at_unix_ms: i64, link: &Link) -> Vec<u8> {
    let mut message = Vec::with_capacity(CHECKPOINT_CONTEXT.len() + 16 + link.len());
    message.extend_from_slice(CHECKPOINT_CONTEXT);
    message.extend_from_slice(&sequence.to_be_bytes());
    message.extend_from_slice(&at_unix_ms.to_be_bytes());
    message.extend_from_slice(link);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(kind: &'a str, actor: &'a str, detail: &'a str) -> EntryFields<'a> {
        EntryFields {
            sequence: 1,
            at_unix_ms: 1_700_000_000_000,
            kind,
            actor,
            actor_uid: Some(1000),
            actor_gid: Some(1000),
            actor_pid: None,
            detail_json: detail,
        }
    }

    #[test]
    fn every_field_changes_the_link_and_fields_cannot_be_shifted() {
        let base = next_link(&GENESIS_LINK, &entry("login", "ab", "{}"));
        assert_ne!(base, next_link(&GENESIS_LINK, &entry("logi", "nab", "{}")));
        assert_ne!(base, next_link(&GENESIS_LINK, &entry("login", "ab", "{ }")));
        let mut other = entry("login", "ab", "{}");
        other.actor_pid = Some(0);
        assert_ne!(base, next_link(&GENESIS_LINK, &other));
        other = entry("login", "ab", "{}");
        other.sequence = 2;
        assert_ne!(base, next_link(&GENESIS_LINK, &other));
        assert_ne!(base, next_link(&[1; 32], &entry("login", "ab", "{}")));
        assert_eq!(base, next_link(&GENESIS_LINK, &entry("login", "ab", "{}")));
    }
}
