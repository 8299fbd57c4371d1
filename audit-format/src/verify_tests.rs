use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;
use crate::EntryLine;

fn key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap()
}

fn entry(sequence: u64) -> EntryLine {
    EntryLine {
        sequence,
        at_unix_ms: 1_700_000_000_000 + i64::try_from(sequence).unwrap(),
        kind: "login_succeeded".into(),
        actor: "alice".into(),
        actor_uid: Some(1000),
        actor_gid: Some(1000),
        actor_pid: Some(42),
        detail_json: format!("{{\"n\":{sequence}}}"),
        entry_hash_hex: "00".into(),
    }
}

fn checkpoint(key: &Ed25519KeyPair, sequence: u64, link: &Link) -> CheckpointLine {
    let at_unix_ms = 1_000 + i64::try_from(sequence).unwrap();
    CheckpointLine {
        sequence,
        at_unix_ms,
        link_hex: hex::encode(link),
        signature_hex: hex::encode(key.sign(&checkpoint_message(sequence, at_unix_ms, link))),
    }
}

/// Entries 1..=count with a checkpoint after every `every` and after the last.
fn export(count: u64, every: u64) -> Vec<String> {
    let key = key();
    let mut lines = vec![ExportLine::Header {
        format: FORMAT.into(),
        public_key_hex: hex::encode(key.public_key()),
        exported_at_unix_ms: 2,
        last_sequence: count,
        signature_hex: hex::encode(key.sign(&header_message(2, 0, &GENESIS_LINK, count))),
    }];
    lines.push(ExportLine::Anchor(CheckpointLine {
        sequence: 0,
        at_unix_ms: 0,
        link_hex: hex::encode(GENESIS_LINK),
        signature_hex: String::new(),
    }));
    let mut link = GENESIS_LINK;
    for sequence in 1..=count {
        let line = entry(sequence);
        link = next_link(&link, &line.fields());
        lines.push(ExportLine::Entry(line));
        if sequence % every == 0 || sequence == count {
            lines.push(ExportLine::Checkpoint(checkpoint(&key, sequence, &link)));
        }
    }
    lines
        .iter()
        .map(|line| serde_json::to_string(line).unwrap())
        .collect()
}

fn public_key() -> String {
    hex::encode(key().public_key())
}

fn verify(lines: &[String]) -> Result<ExportReport, VerifyError> {
    verify_export(lines.join("\n").as_bytes(), &public_key())
}

#[test]
fn a_complete_export_verifies() {
    let report = verify(&export(10, 4)).unwrap();
    assert_eq!(
        (
            report.entries,
            report.checkpoints,
            report.first_sequence,
            report.last_sequence
        ),
        (10, 3, 1, 10)
    );
}

#[test]
fn an_edited_entry_is_named_by_the_next_checkpoint() {
    let mut lines = export(10, 4);
    lines[3] = lines[3].replace("{\\\"n\\\":2}", "{\\\"n\\\":99}");
    let err = verify(&lines).unwrap_err().to_string();
    assert!(
        err.contains("line 7") && err.contains("changed, added or removed"),
        "{err}"
    );
}

#[test]
fn a_removed_or_reordered_entry_is_refused() {
    let mut removed = export(10, 4);
    removed.remove(4);
    assert!(
        verify(&removed)
            .unwrap_err()
            .to_string()
            .contains("entries are missing or out of order")
    );
    let mut swapped = export(10, 4);
    swapped.swap(2, 3);
    assert!(verify(&swapped).is_err());
}

#[test]
fn truncating_the_newest_entries_is_detected() {
    let lines = export(10, 4);
    // Cut at an earlier checkpoint: the signed header still names entry 10.
    let cut = &lines[..lines.len() - 3];
    assert!(matches!(
        verify(cut).unwrap_err(),
        VerifyError::Cut {
            promised: 10,
            found: 8
        }
    ));
    // Cut just before the final checkpoint: two entries unsigned.
    let cut = &lines[..lines.len() - 1];
    assert!(matches!(
        verify(cut).unwrap_err(),
        VerifyError::Truncated {
            last_sequence: 10,
            last_signed: 8,
            unsigned: 2
        }
    ));
}

#[test]
fn another_key_or_a_forged_signature_is_refused() {
    let other = hex::encode(
        Ed25519KeyPair::from_seed_unchecked(&[8; 32])
            .unwrap()
            .public_key(),
    );
    let lines = export(3, 10);
    let err = verify_export(lines.join("\n").as_bytes(), &other).unwrap_err();
    assert!(err.to_string().contains("different public key"), "{err}");
    let mut forged = lines.clone();
    let last = forged.len() - 1;
    forged[last] = forged[last].replacen("\"signature_hex\":\"", "\"signature_hex\":\"00", 1);
    assert!(
        verify(&forged)
            .unwrap_err()
            .to_string()
            .contains("not signed by this public key")
    );
    assert!(matches!(
        verify_export(&b""[..], "zz"),
        Err(VerifyError::BadKey(_))
    ));
}

#[test]
fn junk_and_misplaced_lines_name_their_line() {
    let mut lines = export(3, 10);
    lines.insert(2, "{\"type\":\"header\"}".into());
    assert!(
        verify(&lines)
            .unwrap_err()
            .to_string()
            .starts_with("line 3")
    );
    assert!(
        verify(&["not json".into()])
            .unwrap_err()
            .to_string()
            .starts_with("line 1")
    );
    assert!(verify(&[]).is_err());
}

#[test]
fn dropping_the_oldest_entries_and_re_anchoring_at_a_later_checkpoint_is_refused() {
    let lines = export(10, 4);
    // Entries 1-4 gone; the checkpoint of entry 4 passed off as the anchor.
    let mut cut = vec![lines[0].clone()];
    cut.push(lines[6].replace("\"type\":\"checkpoint\"", "\"type\":\"anchor\""));
    cut.extend(lines[7..].iter().cloned());
    let err = verify(&cut).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("does not sign this anchor"),
        "{err}"
    );
}

#[test]
fn a_changed_signing_time_is_refused() {
    let mut lines = export(4, 10);
    let last = lines.len() - 1;
    lines[last] = lines[last].replace("\"at_unix_ms\":1004", "\"at_unix_ms\":9999");
    assert!(
        verify(&lines)
            .unwrap_err()
            .to_string()
            .contains("not signed by this public key")
    );
}
