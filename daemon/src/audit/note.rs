//! The check of the notes people write for the audit log (a quarantine
//! release, an acknowledgement, a skill decision).
//!
//! Invariant: a note is 1 to [`MAX_NOTE_CHARS`] characters after trimming,
//! without control characters but line breaks and tabs (it is shown to
//! people and written to logs, where a forged line must not pass).

/// Longest note.
pub const MAX_NOTE_CHARS: usize = 1000;

/// `note` trimmed, or why it is refused; `what_to_say` tells the writer
/// what the note is for.
pub fn checked_note<'a>(note: &'a str, what_to_say: &str) -> Result<&'a str, String> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!(
            "{what_to_say}, in 1 to {MAX_NOTE_CHARS} characters"
        ));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(
            "control characters (other than line breaks and tabs) are not allowed".to_owned(),
        );
    }
    Ok(note)
}
